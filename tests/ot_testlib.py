"""What the Python end-to-end tests share: counted checks that print what
failed, the closing "N passed, N failed" line ctest logs, and the MPI
launcher command CMake passes in (a ;-list or a plain command line)."""
import sys

_counts = {"passed": 0, "failed": 0}


def check(cond, what):
    """Count a check; print `what` when it fails. Returns cond."""
    if cond:
        _counts["passed"] += 1
    else:
        _counts["failed"] += 1
        print("FAILED:", what, flush=True)
    return cond


def summary(label=""):
    """Print the closing line; the test's exit code (1 if any check failed)."""
    print("%s%d passed, %d failed" % (label + ": " if label else "", _counts["passed"], _counts["failed"]))
    return 1 if _counts["failed"] else 0


def mpi_command(spec):
    """The launcher as a list: CMake's "${OT_MPIEXEC}" arrives ;-separated."""
    return spec.split(";") if ";" in spec else spec.split()


if __name__ == "__main__":
    sys.exit("a library for the tests, not a test")
