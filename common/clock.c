#include "clock.h"

#include <time.h>

uint64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_now(const struct clock *c)
{
	(void)c;
	return clock_mono_us();
}

const struct clock clock_monotonic = {.now_us = mono_now};

uint64_t clock_fake_now(const struct clock *c)
{
	return c->fake_us;
}
