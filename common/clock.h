/* Time.  Everything in libdsm reads the monotonic clock through here; dsmd
 * reads it only through its struct clock (struct dsmd's), which the unit
 * tests replace with one whose time they set (clock_fake), so that no test
 * sleeps for a hold time or a timeout to pass.
 */
#ifndef DSM_CLOCK_H
#define DSM_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds and milliseconds. */
uint64_t clock_mono_us(void);

static inline uint64_t clock_mono_ms(void)
{
	return clock_mono_us() / 1000u;
}

/* A source of monotonic time.  fake_us is the time of a fake clock. */
struct clock {
	uint64_t (*now_us)(const struct clock *c);
	uint64_t fake_us;
};

/* The real one, and one that returns c->fake_us (tests move it). */
extern const struct clock clock_monotonic;
uint64_t clock_fake_now(const struct clock *c);

static inline struct clock clock_fake(uint64_t start_us)
{
	return (struct clock){.now_us = clock_fake_now, .fake_us = start_us};
}

static inline uint64_t clock_now_us(const struct clock *c)
{
	return c->now_us(c);
}

#endif
