/* The CPU backend's constructor. Everything else about it is reached through
 * backend.h; be_open("cpu") calls this with the thread settings from
 * VLLM_CPU_OMP_THREADS_BIND. Tests that must run on the CPU call it directly. */
#ifndef VLLMC_CPU_BACKEND_H
#define VLLMC_CPU_BACKEND_H

#include "backend/backend.h"

/* nthreads <= 0: from `bind` (VLLM_CPU_OMP_THREADS_BIND syntax) / the CPUs allowed. */
int be_cpu_create(be_backend **out, int nthreads, const char *bind);

#endif
