//go:build linux && cgo

package engine

// A program that uses diskcache keeps C's malloc to one arena, unless
// MALLOC_ARENA_MAX says otherwise (glibc reads it itself).
//
// Pebble's block cache is allocated with C's malloc (cgo), from whichever
// thread reads a block: a Get's, the sweeper's, a compaction's. glibc
// gives each thread that first mallocs an arena of its own, up to 8 a
// core, and memory freed into one arena is not reused by another thread's
// allocations. Measured on a store of 1,000,000 keys of 128 B after
// 100,000 Gets with the 64 MiB block cache: peak RSS 150-160 MB with
// glibc's default (the cache spread over 4 arenas of 18 to 43 MB), 137 MB
// with two arenas, 114 MB with one. Go code does not use C's malloc, so in
// a Go program the cap touches little but Pebble; C libraries used through
// cgo share the one arena too. The cap must be set before the threads
// exist: a thread keeps the arena it got, hence a constructor, run when
// the program loads, rather than a call in Open.

/*
#include <malloc.h>
#include <stdlib.h>

__attribute__((constructor)) static void diskcache_malloc_arenas(void) {
#ifdef M_ARENA_MAX
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		mallopt(M_ARENA_MAX, 1);
	}
#endif
}
*/
import "C"
