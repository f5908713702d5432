#include <dsm.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	printf("libdsm %s\n", dsm_version());
	return strlen(dsm_version()) > 0 ? 0 : 1;
}
