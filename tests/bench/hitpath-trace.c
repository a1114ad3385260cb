/*
 * For tests/bench/hitpath: __cyg_profile_func_enter, linked into a
 * relay-serve built with -finstrument-functions. SIGUSR1 starts a
 * record of the functions entered (each once); SIGUSR2 ends it and
 * writes their offsets in the binary, one a line, to $HITPATH_OUT.
 * Built without instrumentation itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 65536

static _Atomic(uintptr_t) seen[SLOTS];
static atomic_int recording;

void __cyg_profile_func_enter(void *, void *)
    __attribute__((no_instrument_function));
void __cyg_profile_func_exit(void *, void *)
    __attribute__((no_instrument_function));

void
__cyg_profile_func_enter(void *fn, void *site)
{
	uintptr_t a = (uintptr_t)fn, none;
	size_t i;

	(void)site;
	if (!atomic_load(&recording))
		return;
	for (i = (a >> 4) % SLOTS;; i = (i + 1) % SLOTS) {
		none = 0;
		if (atomic_load(&seen[i]) == a ||
		    atomic_compare_exchange_strong(&seen[i], &none, a))
			return;
		if (none == a)
			return;
	}
}

void
__cyg_profile_func_exit(void *fn, void *site)
{
	(void)fn, (void)site;
}

static void __attribute__((no_instrument_function))
on_start(int sig)
{
	(void)sig;
	memset(seen, 0, sizeof seen);
	atomic_store(&recording, 1);
}

static void __attribute__((no_instrument_function))
on_stop(int sig)
{
	const char *out = getenv("HITPATH_OUT");
	FILE *f;
	Dl_info info;
	size_t i;

	(void)sig;
	atomic_store(&recording, 0);
	if (out == NULL || (f = fopen(out, "w")) == NULL)
		return;
	for (i = 0; i < SLOTS; i++)
		if (seen[i] != 0 && dladdr((void *)seen[i], &info) != 0)
			fprintf(f, "0x%lx\n", (unsigned long)(seen[i] -
			    (uintptr_t)info.dli_fbase));
	fclose(f);
}

static void __attribute__((constructor, no_instrument_function))
hitpath_init(void)
{
	signal(SIGUSR1, on_start);
	signal(SIGUSR2, on_stop);
}
