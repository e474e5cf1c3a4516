/**
 * The part of a deploy that runs on the host itself, as one POSIX shell script with sub-commands.
 * The same text runs on a local prefix (`sh -c SCRIPT sh CMD ARGS...`) and over SSH (the same
 * command line, quoted once for the remote shell), so both targets follow one tested procedure.
 *
 * Layout of a prefix:
 *   <prefix>/releases/<id>/     one bundle per release; its logs, cache and temp are symlinks to shared/
 *   <prefix>/shared/{logs,cache,temp}   state that outlives a release (pid file, error.log, disk cache)
 *   <prefix>/current -> releases/<id>   switched atomically (symlink to a temp name, then rename)
 * nginx runs with `-p <prefix>/current/`: a reload re-reads `<prefix>/current/nginx.conf` through the
 * symlink, so switching it and sending SIGHUP to the master moves the edge to the new release.
 */
export const HOST_SCRIPT = String.raw`
set -eu
cmd=$1; prefix=$2; shift 2
case "$prefix" in /*) ;; *) echo "error: prefix must be an absolute path: $prefix" >&2; exit 2;; esac
log="$prefix/shared/logs/error.log"
pidfile="$prefix/shared/logs/nginx.pid"

valid_id() { case "$1" in ""|*[!0-9A-Za-z.-]*|.*) echo "error: bad release id: $1" >&2; exit 2;; esac; }
master_pid() {
  [ -f "$pidfile" ] || return 1
  p=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}
children() {
  for s in /proc/[0-9]*/stat; do
    { read -r line < "$s"; } 2>/dev/null || continue
    set -- $line
    [ "$4" = "$1" ] && continue
    [ "$4" = "$parent" ] && echo "$1"
  done
  return 0
}
log_size() { if [ -f "$log" ]; then wc -c < "$log" | tr -d ' '; else echo 0; fi; }
log_since() { if [ -f "$log" ]; then tail -c +$(( $1 + 1 )) "$log"; fi; }
current() { if [ -L "$prefix/current" ]; then basename "$(readlink "$prefix/current")"; fi; }
releases() { if [ -d "$prefix/releases" ]; then ls -1 "$prefix/releases" | grep -v '^\.' | sort; fi; }

case "$cmd" in
info)
  pid=$(master_pid || true)
  echo "current=$(current)"
  echo "pid=$pid"
  echo "releases=$(releases | tr '\n' ' ')"
  ;;
receive)
  # stdin: a tar of the bundle files. Prints the release id actually used.
  id=$1; valid_id "$id"
  umask 022
  mkdir -p "$prefix/releases" "$prefix/shared/logs" "$prefix/shared/cache" "$prefix/shared/temp"
  chmod 755 "$prefix" "$prefix/releases" "$prefix/shared" 2>/dev/null || true
  chmod 777 "$prefix/shared/logs" "$prefix/shared/cache" "$prefix/shared/temp" 2>/dev/null || true
  final=$id; n=1
  while [ -e "$prefix/releases/$final" ]; do final="$id.$n"; n=$((n + 1)); done
  tmp="$prefix/releases/.incoming-$final"
  rm -rf "$tmp"; mkdir -p "$tmp"
  tar -xf - -C "$tmp"
  chmod 755 "$tmp"
  for d in logs cache temp; do rm -rf "$tmp/$d"; ln -s "../../shared/$d" "$tmp/$d"; done
  mv "$tmp" "$prefix/releases/$final"
  echo "$final"
  ;;
check)
  id=$1; nginx=$2; valid_id "$id"
  "$nginx" -t -q -p "$prefix/releases/$id/" -c nginx.conf 2>&1
  ;;
switch)
  id=$1; valid_id "$id"
  [ -d "$prefix/releases/$id" ] || { echo "error: no release $id in $prefix/releases" >&2; exit 1; }
  ln -sfn "releases/$id" "$prefix/.current.tmp"
  mv -T "$prefix/.current.tmp" "$prefix/current"
  ;;
pack)
  # the current release's files (not its logs/cache/temp links) as a tar on stdout
  [ -L "$prefix/current" ] || { echo "error: $prefix has no current release" >&2; exit 1; }
  tar -C "$prefix/current/" -cf - --exclude=./logs --exclude=./cache --exclude=./temp .
  ;;
conf)
  id=$1; valid_id "$id"
  cat "$prefix/releases/$id/nginx.conf"
  ;;
lock)
  # one deploy or rollback at a time per prefix: mkdir is atomic. $2 = 1: create the prefix (a deploy)
  if [ "$2" = 1 ]; then mkdir -p "$prefix"; elif [ ! -d "$prefix" ]; then echo "error: $prefix does not exist" >&2; exit 1; fi
  if mkdir "$prefix/.deploy-lock" 2>/dev/null; then
    echo "$1" > "$prefix/.deploy-lock/owner"
  else
    echo "error: another deploy or rollback holds $prefix/.deploy-lock ($(cat "$prefix/.deploy-lock/owner" 2>/dev/null || echo unknown)); if none is running, remove that folder" >&2
    exit 1
  fi
  ;;
unlock)
  rm -rf "$prefix/.deploy-lock"
  ;;
unlink)
  rm -f "$prefix/current"
  ;;
reload)
  nginx=$1; start=$2; envfile=$3; reloadcmd=$4; timeout=$5
  off=$(log_size)
  echo "offset=$off"
  if pid=$(master_pid); then
    parent=$pid
    before=" $(children | tr '\n' ' ') "
    if [ -n "$reloadcmd" ]; then sh -c "$reloadcmd" >&2; else kill -HUP "$pid"; fi
    i=0
    while :; do
      sleep 0.1; i=$((i + 1))
      if log_since "$off" | grep -E '\[(emerg|alert)\]|init_by_lua[a-z_]* error|init_worker_by_lua[a-z_]* error' >&2; then echo "error: nginx refused the new configuration (see above); it keeps the previous one" >&2; exit 1; fi
      kill -0 "$pid" 2>/dev/null || { echo "error: the nginx master $pid exited during the reload" >&2; exit 1; }
      fresh=0
      for c in $(children); do case "$before" in *" $c "*) ;; *) fresh=1;; esac; done
      [ $fresh = 1 ] && break
      [ $i -ge $((timeout * 10)) ] && { echo "error: no new nginx workers $timeout s after the reload" >&2; exit 1; }
    done
    echo "reloaded=$pid"
  elif [ "$start" = 1 ]; then
    [ -L "$prefix/current" ] || { echo "error: $prefix/current does not exist" >&2; exit 1; }
    cd "$prefix/current"
    if [ -n "$envfile" ]; then
      [ -r "$envfile" ] || { echo "error: env file $envfile is not readable" >&2; exit 1; }
      set -a; . "$envfile"; set +a
    fi
    "$nginx" -p "$prefix/current/" -c nginx.conf </dev/null >&2
    i=0
    until pid=$(master_pid); do
      sleep 0.1; i=$((i + 1))
      [ $i -ge $((timeout * 10)) ] && { echo "error: nginx did not write $pidfile within $timeout s" >&2; log_since "$off" >&2; exit 1; }
    done
    echo "started=$pid"
  else
    echo "error: nginx is not running for $prefix (no live pid in $pidfile); pass --start to start it" >&2
    exit 1
  fi
  ;;
errors)
  # what counts against a release: nginx's own [crit] and worse, and Lua code failing (not the runtime's
  # operational warnings, such as a Redis outage it rides through)
  log_since "$1" | grep -E '\[(emerg|alert|crit)\]|runtime error|entry thread aborted|stack traceback|failed to load|attempt to (call|index|compare|perform)' || true
  ;;
stop)
  if pid=$(master_pid); then kill -QUIT "$pid"; i=0; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i+1)); [ $i -ge 100 ] && kill -KILL "$pid" 2>/dev/null; [ $i -ge 120 ] && break; done; echo "stopped=$pid"; fi
  ;;
remove)
  id=$1; valid_id "$id"
  [ "$(current)" = "$id" ] && { echo "error: $id is the current release" >&2; exit 1; }
  rm -rf "$prefix/releases/$id"
  ;;
prune)
  keep=$1; cur=$(current)
  total=$(releases | wc -l | tr -d ' ')
  extra=$((total - keep))
  for r in $(releases); do
    [ $extra -le 0 ] && break
    [ "$r" = "$cur" ] && continue
    rm -rf "$prefix/releases/$r"; echo "pruned=$r"; extra=$((extra - 1))
  done
  ;;
status)
  cur=$(current)
  echo "current=$cur"
  pid=$(master_pid || true)
  echo "pid=$pid"
  if [ -n "$pid" ]; then
    hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
    st=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
    up=$(cut -d' ' -f1 /proc/uptime | cut -d. -f1)
    echo "uptime=$((up - st / hz))"
    echo "master_prefix=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | sed -n 's/.*-p \([^ ]*\).*/\1/p')"
  fi
  echo "releases=$(releases | tr '\n' ' ')"
  if [ -n "$cur" ] && [ -f "$prefix/current/manifest.json" ]; then echo "manifest<<"; cat "$prefix/current/manifest.json"; fi
  ;;
*)
  echo "error: unknown host command $cmd" >&2; exit 2
  ;;
esac
`;
