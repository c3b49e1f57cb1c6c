#!/usr/bin/env bash
# A one-node SLURM cluster with accounting, on this machine, for trying (and testing) the SLURM path:
#
#   eval "$(sudo scripts/slurm-local.sh up)"   # install missing Debian packages, start it, export SLURM_CONF
#   sinfo; amodal-run -m hydra/launcher=slurm hydra.launcher.partition=local ...
#   sudo scripts/slurm-local.sh down           # stop exactly the daemons `up` started, newest first
#   scripts/slurm-local.sh status | env       # which daemons run | the export line again
#
# Everything lives in one temporary folder (configs, munge key, MariaDB data, state, logs); nothing under
# /etc is written and no system service is used: munged, mariadbd, slurmdbd, slurmctld and slurmd are
# started by hand, each with its own PID file, on free loopback ports. The state file (SLURM_LOCAL_STATE,
# default /tmp/amodal-slurm-local.state) records the folder and the PIDs so that `down` finds them.
# Needs root and apt (Debian/Ubuntu; installing mariadb-server may upgrade perl-base, which is harmless).
# Exit status: 0 done, 1 failed (the log to read is named), 3 SLURM cannot be started here (not root,
# no apt, packages not installable).
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/tmp/amodal-slurm-local.state}
CLUSTER=amodal
PARTITION=local
PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)
PROGRAMS=(munged mungekey mariadbd mariadb-install-db mariadb mariadb-admin slurmdbd slurmctld slurmd
          slurmstepd sinfo squeue scontrol scancel sacct sacctmgr sbatch srun)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order; `down` stops them in reverse

say() { echo "slurm-local: $*" >&2; }
die() { say "error: $*"; exit 1; }
cannot() { say "cannot start SLURM here: $*"; exit 3; }

# ---------------------------------------------------------------------------------------------- state
load_state() {  # sets DIR, SLURM_CONF and PID_<daemon> from the state file; false if there is none
    [[ -f $STATE ]] || return 1
    # shellcheck disable=SC1090
    source "$STATE"
}

record() { echo "$1=$2" >>"$STATE"; }

alive() {  # alive NAME PID: PID runs the program NAME (not a reused PID, nor a zombie waiting for init)
    local stat
    [[ -n ${2:-} ]] && stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
    [[ $stat == "$2 ($1) "* && ${stat##*) } != Z* ]]
}

pid_of() { local var="PID_$1"; echo "${!var:-}"; }

# ------------------------------------------------------------------------------------------- install
install_packages() {
    local missing=() program
    for program in "${PROGRAMS[@]}"; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$program" >/dev/null || missing+=("$program")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || cannot "${missing[*]} missing and no apt-get to install them (not Debian/Ubuntu)"
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    local log
    log=$(mktemp /tmp/slurm-local-apt.XXXXXX)
    # No daemon is started by the packages here (no systemd, or policy-rc.d); where systemd starts the
    # distribution's own munge/mariadb/slurm services, they run beside this cluster on their own ports.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update &&
           DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y \
               --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
        cannot "apt-get could not install ${PACKAGES[*]}: $(grep -E '^(E|W):' "$log" | head -1) (full log: $log)"
    fi
    rm -f "$log"
}

# -------------------------------------------------------------------------------------------- helpers
free_port() {  # free_port VAR BASE: VAR = the first port from BASE that nothing listens on, nor taken
    local -n chosen=$1  # by an earlier call (the daemons bind them only later)
    local port=$2
    while [[ " ${TAKEN_PORTS:-} " == *" $port "* ]] || (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    TAKEN_PORTS="${TAKEN_PORTS:-} $port"
    # shellcheck disable=SC2034  # a nameref: this sets the caller's variable
    chosen=$port
}

wait_for() {  # wait_for SECONDS WHAT LOG COMMAND...: poll COMMAND until it succeeds
    local seconds=$1 what=$2 log=$3
    shift 3
    local end=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "$what did not come up in ${seconds}s; see $log"
        sleep 0.2
    done
}

wait_pid_file() {  # wait_pid_file NAME FILE LOG: record the PID that NAME wrote to FILE
    local name=$1 file=$2 log=$3 pid=""
    local end=$((SECONDS + 30))
    while ((SECONDS < end)); do
        pid=$(cat "$file" 2>/dev/null || true)
        alive "$name" "$pid" && break
        sleep 0.1
    done
    alive "$name" "$pid" || die "$name did not start; see $log"
    record "PID_$name" "$pid"
    eval "PID_$name=$pid"
}

# ----------------------------------------------------------------------------------------- the daemons
start_munged() {
    local m=$DIR/munge
    mkdir -p "$m/etc" "$m/run" "$m/log" "$m/lib"
    mungekey --create --keyfile="$m/etc/munge.key" 2>/dev/null ||
        dd if=/dev/urandom of="$m/etc/munge.key" bs=1024 count=1 status=none
    chown -R munge:munge "$m"
    chmod 700 "$m/etc" "$m/log" "$m/lib"
    chmod 711 "$m/run"  # munged refuses a socket folder that others can write or cannot traverse
    chmod 400 "$m/etc/munge.key"
    MUNGE_SOCKET=$m/run/munge.socket
    runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$m/etc/munge.key" \
        --pid-file="$m/run/munged.pid" --log-file="$m/log/munged.log" --seed-file="$m/lib/munged.seed" \
        </dev/null >>"$DIR/log/munged.out" 2>&1 || die "munged did not start; see $m/log/munged.log"
    wait_pid_file munged "$m/run/munged.pid" "$m/log/munged.log"
}

start_mariadbd() {
    local d=$DIR/mysql
    mkdir -p "$d/data" "$d/run"
    chown -R mysql:mysql "$d"
    MYSQL_SOCKET=$d/run/mysqld.sock
    mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$DIR/log/mariadb-install-db.log" 2>&1 ||
        die "mariadb-install-db failed; see $DIR/log/mariadb-install-db.log"
    # slurmdbd reaches MariaDB over TCP (StorageHost=127.0.0.1), so the DB user is 'slurm'@'127.0.0.1'.
    setsid mariadbd --no-defaults --user=mysql --datadir="$d/data" --socket="$MYSQL_SOCKET" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$d/run/mariadbd.pid" \
        --log-error="$DIR/log/mariadbd.log" --skip-log-bin --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        --innodb-flush-log-at-trx-commit=2 </dev/null >>"$DIR/log/mariadbd.out" 2>&1 &
    wait_pid_file mariadbd "$d/run/mariadbd.pid" "$DIR/log/mariadbd.log"
    wait_for 60 mariadbd "$DIR/log/mariadbd.log" mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" ping
    mariadb --no-defaults --socket="$MYSQL_SOCKET" -u root -e \
        "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "could not create the slurm DB user"
}

write_configs() {
    local cpus memory
    cpus=$(nproc)
    memory=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)  # MB; slurmd must find as much
    NODE=$(uname -n)
    NODE=${NODE%%.*}
    mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/run"
    # slurmctld → slurmdbd ignores AuthInfo: AccountingStoragePass names the munge socket instead.
    cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
KillWait=2
ReturnToService=2
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"  # slurmdbd refuses a config others can read (it holds the password)
    SLURM_CONF=$DIR/etc/slurm.conf
    export SLURM_CONF
    record SLURM_CONF "$SLURM_CONF"
}

start_slurmdbd() {
    slurmdbd </dev/null >>"$DIR/log/slurmdbd.out" 2>&1 || die "slurmdbd did not start; see $DIR/log/slurmdbd.log"
    wait_pid_file slurmdbd "$DIR/run/slurmdbd.pid" "$DIR/log/slurmdbd.log"
    wait_for 60 slurmdbd "$DIR/log/slurmdbd.log" sacctmgr -n show cluster
    # Accounting must know the cluster before slurmctld registers with it (sacct, and submitit's view
    # of cancelled jobs, read it).
    sacctmgr -i add cluster "$CLUSTER" >>"$DIR/log/sacctmgr.log" 2>&1 ||
        die "could not register cluster $CLUSTER; see $DIR/log/sacctmgr.log"
}

start_slurmctld() {
    slurmctld -c </dev/null >>"$DIR/log/slurmctld.out" 2>&1 || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    wait_pid_file slurmctld "$DIR/run/slurmctld.pid" "$DIR/log/slurmctld.log"
    wait_for 60 slurmctld "$DIR/log/slurmctld.log" scontrol ping
}

start_slurmd() {
    slurmd -N "$NODE" </dev/null >>"$DIR/log/slurmd.out" 2>&1 || die "slurmd did not start; see $DIR/log/slurmd.log"
    wait_pid_file slurmd "$DIR/run/slurmd.pid" "$DIR/log/slurmd.log"
    wait_for 60 "node $NODE (idle in sinfo)" "$DIR/log/slurmd.log" node_idle
}

node_idle() { [[ $(sinfo -h -N -n "$NODE" -o %T) == idle ]]; }

# ------------------------------------------------------------------------------------------- commands
up() {
    if load_state; then
        local name dead=()
        for name in "${DAEMONS[@]}"; do alive "$name" "$(pid_of "$name")" || dead+=("$name"); done
        if ((${#dead[@]} == 0)); then
            say "already up ($DIR; state file $STATE)"
            echo "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        say "state file $STATE is stale (${dead[*]} not running): stopping what is left of it first"
        down
    fi
    [[ $(id -u) == 0 ]] || cannot "needs root (munged runs as munge, mariadbd as mysql, the SLURM daemons as root)"
    install_packages
    PATH=$PATH:/usr/sbin:/sbin
    DIR=$(mktemp -d /tmp/slurm-local.XXXXXX)
    chmod 755 "$DIR"  # munge and mysql must traverse it
    export SLURM_LOCAL_DIR=$DIR  # every daemon inherits it: `down` finds what is left
    mkdir -p "$DIR/log"
    echo "DIR=$DIR" >"$STATE"
    trap 'say "bring-up failed: stopping what was started (logs kept in $DIR)"; SLURM_LOCAL_KEEP=1 down || true' EXIT
    free_port DB_PORT 13306
    free_port CTLD_PORT 16817
    free_port SLURMD_PORT 16818
    free_port DBD_PORT 16819
    DB_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9)
    local start=$SECONDS
    start_munged
    start_mariadbd
    write_configs
    start_slurmdbd
    start_slurmctld
    start_slurmd
    trap - EXIT
    say "up in $((SECONDS - start))s: cluster $CLUSTER, partition $PARTITION, node $NODE ($(nproc) CPUs); $DIR"
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {  # stop NAME PID: TERM, then KILL after 20 s
    local name=$1 pid=$2 end=$((SECONDS + 20))
    alive "$name" "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$name" "$pid" && ((SECONDS < end)); do sleep 0.1; done
    if alive "$name" "$pid"; then
        say "$name ($pid) ignored TERM for 20s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

leftovers() {  # this cluster's processes, as "PID(name)": the daemons carry SLURM_LOCAL_DIR in their
    local proc cwd  # environment; slurmstepd clears its environment but runs in the cluster's folder
    [[ -n ${DIR:-} ]] || return 0
    for proc in /proc/[0-9]*; do
        cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
        if [[ $cwd == "$DIR" || $cwd == "$DIR"/* ]] || grep -qzx "SLURM_LOCAL_DIR=$DIR" "$proc/environ" 2>/dev/null
        then
            printf '%s(%s) ' "${proc#/proc/}" "$(cat "$proc/comm" 2>/dev/null)"
        fi
    done
}

down() {
    if ! load_state; then
        say "not up (no state file $STATE)"
        return 0
    fi
    PATH=$PATH:/usr/sbin:/sbin
    export SLURM_CONF
    if [[ -n ${SLURM_CONF:-} ]] && alive slurmctld "$(pid_of slurmctld)"; then
        local jobs end=$((SECONDS + 20))
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            say "cancelling jobs still queued or running: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            while [[ -n $(squeue -h -o %A 2>/dev/null) ]] && ((SECONDS < end)); do sleep 0.2; done
        fi
    fi
    local i name end
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        name=${DAEMONS[i]}
        stop "$name" "$(pid_of "$name")"
    done
    end=$((SECONDS + 5))  # stopped daemons are zombies until init reaps them: wait, so `ps` shows none
    for name in "${DAEMONS[@]}"; do
        while [[ $(cat "/proc/$(pid_of "$name")/comm" 2>/dev/null) == "$name" ]] && ((SECONDS < end)); do
            sleep 0.1
        done
    done
    local left entry
    left=$(leftovers)
    if [[ -n $left ]]; then  # step daemons of a job cancelled while suspended outlive slurmd: end them too
        say "stopping what the daemons left (a step of a suspended job?): $left"
        for entry in $left; do kill -CONT "${entry%%(*}" 2>/dev/null || true; kill -KILL "${entry%%(*}" 2>/dev/null || true; done
        end=$((SECONDS + 5))
        while [[ -n $(leftovers) ]] && ((SECONDS < end)); do sleep 0.1; done
        left=$(leftovers)
    fi
    if [[ -n $left ]]; then
        say "error: still running after stopping the daemons (started under $DIR): $left"
        return 1
    fi
    rm -f "$STATE"
    if [[ -n ${DIR:-} && $DIR == /tmp/slurm-local.* && -d $DIR ]]; then
        if [[ -n ${SLURM_LOCAL_KEEP:-} ]]; then
            say "kept $DIR (SLURM_LOCAL_KEEP)"
        else
            rm -rf "$DIR"
        fi
    fi
    say "down"
}

status() {
    if ! load_state; then
        say "not up (no state file $STATE)"
        return 1
    fi
    local name pid down=()
    for name in "${DAEMONS[@]}"; do
        pid=$(pid_of "$name")
        if alive "$name" "$pid"; then echo "$name $pid running"; else echo "$name ${pid:--} not running"; down+=("$name"); fi
    done
    echo "folder $DIR"
    echo "export SLURM_CONF=${SLURM_CONF:-}"
    ((${#down[@]} == 0)) || { say "not running: ${down[*]} (scripts/slurm-local.sh down, then up)"; return 1; }
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    env) status >/dev/null && echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 up|down|status|env   (state file: \$SLURM_LOCAL_STATE, default $STATE)" >&2; exit 2 ;;
esac
