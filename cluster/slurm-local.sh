#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1, from Debian's packages, to try the cluster path at home
# and to test it on CI: `make slurm-up` (this script's `up`) and `make slurm-down` (`down`).
#
#   up      install what is missing (munge, slurmctld, slurmd, slurm-client), write slurm.conf
#           for this machine (its CPUs and memory), start munged, slurmctld and slurmd, and wait
#           until the node takes jobs. Idempotent: a cluster that already answers is left as it is.
#   down    cancel every job, stop the daemons (the packages stay installed).
#   status  sinfo and squeue.
#
# It must run as root (it installs packages and starts daemons). Settings: SLURM_CONF_DIR
# (default /etc/slurm). Accounting is off, so submitit prints "Bypassing sacct error": harmless.
set -euo pipefail

CONF_DIR="${SLURM_CONF_DIR:-/etc/slurm}"
STATE_DIR=/var/spool/slurm
LOG_DIR=/var/log/slurm
NODE="$(hostname -s)"

say() { echo "slurm-local: $*"; }

install_missing() {
  local missing=()
  for command in munged slurmctld slurmd sbatch; do
    command -v "$command" >/dev/null || missing+=("$command")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  if [ "$(id -u)" != 0 ]; then
    say "missing ${missing[*]}; run this as root to install them (apt-get install munge slurmctld slurmd slurm-client)" >&2
    exit 1
  fi
  say "installing munge and SLURM (Debian packages) ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    munge slurmctld slurmd slurm-client >/dev/null
}

write_config() {
  local cpus memory_mb
  cpus="$(nproc)"
  memory_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
  mkdir -p "$CONF_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR"
  cat >"$CONF_DIR/slurm.conf" <<CONF
# written by sweeplab's cluster/slurm-local.sh: one node on loopback
ClusterName=sweeplab-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
KillWait=5
MinJobAge=300
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((memory_mb / cpus))
CONF
}

node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n 1; }

wait_for_node() {
  for _ in $(seq 1 60); do
    case "$(node_state)" in
      idle*|mix*|alloc*) return 0 ;;
      down*|drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  say "the node did not come up; see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" >&2
  exit 1
}

up() {
  if scontrol ping 2>/dev/null | grep -q UP && [ -n "$(node_state)" ]; then
    wait_for_node
    say "already running: $(sinfo -h -o '%P %D node(s), %c CPUs, state %t')"
    return
  fi
  install_missing
  write_config
  [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; mungekey --create --force; }
  chown -R munge: /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  mkdir -p /run/munge && chown munge: /run/munge
  pgrep -x munged >/dev/null || runuser -u munge -- munged
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  wait_for_node
  say "up: $(sinfo -h -o '%P partition, %D node(s), %c CPUs, state %t') (make slurm-down stops it)"
}

down() {
  if command -v scancel >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
    scancel --full --user="$(id -un)" 2>/dev/null || true
  fi
  for daemon in slurmd slurmctld munged; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  for daemon in slurmd slurmctld munged; do
    for _ in $(seq 1 20); do pgrep -x "$daemon" >/dev/null || break; sleep 0.5; done
  done
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
