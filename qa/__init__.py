"""qa: a hallucination-aware quality-assurance harness for image decoders."""

import os

__version__ = "0.1.0"

# OpenMP workers (torch's on a CPU) sleep when idle instead of spinning, unless the user chose otherwise. It must
# be set before torch's OpenMP runtime loads, so here, where every qa entry point starts (torch is imported later,
# lazily). A spinning worker holds a core after every torch op: between the many short torch steps of a case
# and the compiled kernels' own threads that is CPU time spent on nothing (the SSIM family at 2048 px: about
# 0.5 of 1.0 CPU s per case; docs/benchmarks.md, issue 29), and on a shared machine it is taken from other jobs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
