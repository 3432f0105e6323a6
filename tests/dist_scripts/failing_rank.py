"""Run under mpiexec: the last rank fails in the way named by argv[1] while the others
wait in a collective. The job must end (non-zero) quickly instead of hanging.

  raise   an uncaught exception (ember.distributed's excepthook aborts the job)
  exit    os._exit(3), a crash without MPI_Finalize (the launcher ends the job)
  skip    the rank leaves the collective out and then sleeps: the others' watchdog
          (timeout=3 s) aborts the job
"""
import os
import sys
import time

import ember
import ember.distributed as dist


def main():
    mode = sys.argv[1]
    dist.init_process_group("mpi", timeout=3)
    rank, n = dist.get_rank(), dist.get_world_size()
    t = ember.ones(1000)
    dist.all_reduce(t)  # everyone is up
    if rank == n - 1:
        if mode == "raise":
            raise RuntimeError("simulated failure in the last rank")
        if mode == "exit":
            os._exit(3)
        if mode == "skip":
            time.sleep(60)
            return 0
    dist.all_reduce(t)
    print(f"rank {rank}: finished a collective it should not have", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
