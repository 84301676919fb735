"""Driving jobs on the test cluster of tests/slurm/slurm-up.sh (no slurmdbd:
scontrol keeps a finished job's state for MinJobAge seconds). Shared by the
sbatch tests; call setup() first."""
import os
import re
import subprocess
import time

ENV = {}  # the environment jobs are submitted with (tests may add OT_LAUNCHER)
_dirs = {}
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL")


def setup(cluster, build, work):
    """cluster: the harness folder; build: OT_BUILD_DIR for the scripts;
    work: where job logs go (job-<id>.out)."""
    ENV.clear()
    ENV.update(os.environ, SLURM_CONF=os.path.join(cluster, "slurm.conf"), OT_BUILD_DIR=build)
    ENV.pop("OT_LAUNCHER", None)
    _dirs.update(cluster=cluster, work=work)


def run(cmd, **kw):
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)


def job_info(job):
    """scontrol's fields of `job` as a dict ({} if unknown)."""
    r = run(["scontrol", "show", "job", "-o", str(job)])
    return dict(re.findall(r"(\w+)=(\S*)", r.stdout)) if r.returncode == 0 else {}


def job_log(job):
    path = os.path.join(_dirs["work"], "job-%s.out" % job)
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def diagnose(job):
    print(run(["scontrol", "show", "job", str(job)]).stdout)
    print("--- job output\n" + job_log(job)[-3000:])
    log = os.path.join(_dirs["cluster"], "log", "slurmctld.log")
    if os.path.exists(log):
        print("--- slurmctld.log (tail)\n" + "".join(open(log).readlines()[-20:]))


def wait_final(job, timeout, on_poll=None):
    """Poll until `job` reaches a final state (bounded); its scontrol fields.
    A requeued job waits ~2 min (BeginTime) before it may start again; the
    test cluster has no reason to, so it is released 2 s on (slurmd refuses
    to launch a job whose credential was revoked, by the requeue, in the
    same second: "Job credential revoked")."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = job_info(job)
        if info.get("JobState") in FINAL:
            return info
        if info.get("JobState") == "PENDING" and info.get("Reason") == "BeginTime":
            run(["scontrol", "update", "jobid=" + job, "StartTime=now+2"])
        if on_poll:
            on_poll(info)
        time.sleep(0.2)
    print("job %s not finished after %ds" % (job, timeout))
    diagnose(job)
    run(["scancel", str(job)])
    return job_info(job)
