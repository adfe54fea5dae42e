#!/usr/bin/env bash
# loopback-sshd.sh: a throwaway OpenSSH sshd on 127.0.0.1 for demos and benchmarks (Go tests use
# the package transfer/sshtest instead). Same setup as sshtest: private host and client keys,
# authorized_keys and sshd_config in DIR, a known_hosts file that trusts exactly this server.
#
#   scripts/sshd/loopback-sshd.sh start DIR   # prints shell assignments; also written to DIR/env
#   scripts/sshd/loopback-sshd.sh stop DIR
#
# After `start`: . DIR/env; snapferry init "ssh://$SSH_USER@127.0.0.1:$SSH_PORT/srv/repo" \
#   --identity="$SSH_KEY" --known-hosts="$SSH_KNOWN_HOSTS"
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

sshd_bin=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$sshd_bin" ] || { echo "loopback-sshd: sshd not found; apt-get install openssh-server" >&2; exit 1; }

case $cmd in
stop)
  if [ -f "$dir/sshd.pid" ]; then
    pid=$(cat "$dir/sshd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/sshd.pid"
  fi
  exit 0
  ;;
start) ;;
*) usage ;;
esac

if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
  echo "loopback-sshd: already running (pid $(cat "$dir/sshd.pid")); stop it first" >&2
  exit 1
fi

user=$(id -un)
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C loopback-sshd -f "$dir/host_ed25519"
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C loopback-sshd -f "$dir/client_ed25519"
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi   # privilege separation dir

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for _ in 1 2 3 4 5 6 7 8 9 10; do
  port=$((20000 + RANDOM % 40000))
  port_in_use "$port" && continue
  cat > "$dir/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
PrintMotd no
MaxStartups 64
MaxSessions 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
# A store host's login, not this machine's: bash sources ~/.bashrc for every command sshd runs
# (Debian's SSH_SOURCE_BASHRC) unless SHLVL says it is not a top-level shell, and a developer's
# .bashrc (here root's: pyenv init) took 0.5 s quiet, 5-7 s at load 20, before each far command
# (snapferry serve, borg serve) could start. sftp (restic) runs without a shell.
SetEnv SHLVL=1
CFG
  # Without -D sshd detaches once it listens, so a zero exit means it is serving.
  if "$sshd_bin" -f "$dir/sshd_config" -E "$dir/sshd.log"; then
    for _ in $(seq 50); do port_in_use "$port" && break; sleep 0.1; done
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
    cat > "$dir/env" <<ENV
SSH_USER=$user
SSH_PORT=$port
SSH_KEY=$dir/client_ed25519
SSH_KNOWN_HOSTS=$dir/known_hosts
SSHD_PID=$(cat "$dir/sshd.pid")
ENV
    cat "$dir/env"
    exit 0
  fi
done
echo "loopback-sshd: could not start sshd; see $dir/sshd.log" >&2
exit 1
