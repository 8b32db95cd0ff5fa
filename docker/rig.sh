#!/usr/bin/env bash
# The crmlink test rig: a real Asterisk 22 (Debian sid package) configured from
# asterisk-conf/, and a real Redis, both on loopback.
#
#   docker/rig.sh rootfs   build the Debian sid + asterisk root filesystem once (cached)
#   docker/rig.sh up       start Asterisk and Redis; return once ARI answers /asterisk/ping
#   docker/rig.sh down     stop both; leave no process behind
#   docker/rig.sh status   say what runs
#
# One recipe, two runners: where `docker info` answers, the root filesystem is imported as
# a local image and Asterisk runs in a container on the host network; otherwise it runs
# from the same root filesystem under chroot. CRMLINK_RIG=docker|chroot forces one.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CRMLINK_CACHE:-$HOME/.cache/crmlink}
rootfs=$cache/rootfs-sid
run=${CRMLINK_RIG_RUN:-$cache/run} # pid files and logs; a test gives its own
conf=$here/asterisk-conf
image=crmlink/asterisk-sid
container=crmlink-asterisk
redis_port=${CRMLINK_RIG_REDIS_PORT:-6390}
ari=http://127.0.0.1:8088/ari
ari_auth=crmlink:crmlink

say() { printf 'rig: %s\n' "$*" >&2; }

# need CMD PACKAGE: install a Debian package when its command is missing.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	say "installing $2 (apt-get)"
	if [ -z "${apt_updated:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

runner() {
	case "${CRMLINK_RIG:-}" in
	docker | chroot) echo "$CRMLINK_RIG" ;;
	"") if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then echo docker; else echo chroot; fi ;;
	*) say "CRMLINK_RIG is '$CRMLINK_RIG'; allowed: docker, chroot"; exit 2 ;;
	esac
}

build_rootfs() {
	if [ -x "$rootfs/usr/sbin/asterisk" ]; then
		return 0
	fi
	need debootstrap debootstrap
	mkdir -p "$cache"
	rm -rf "$rootfs.tmp"
	say "building the Debian sid + asterisk root filesystem in $rootfs (once; about a minute)"
	local log=$cache/debootstrap.log
	debootstrap --variant=minbase --include=asterisk sid "$rootfs.tmp" >"$log" 2>&1 &
	local pid=$! n=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		n=$((n + 5))
		say "  ... ${n}s: $(tail -n 1 "$log" | cut -c1-100)"
	done
	if ! wait "$pid"; then
		say "debootstrap failed; last lines of $log:"
		tail -n 20 "$log" >&2
		exit 1
	fi
	# Debian's sample configs move aside; the rig's come from asterisk-conf/.
	mv "$rootfs.tmp/etc/asterisk" "$rootfs.tmp/etc/asterisk.dist"
	mkdir -p "$rootfs.tmp/etc/asterisk"
	mv "$rootfs.tmp" "$rootfs"
	say "root filesystem ready: $("$rootfs/usr/sbin/asterisk" -V 2>/dev/null || chroot "$rootfs" asterisk -V)"
}

# closefds closes every descriptor but stdin, stdout and stderr, in the subshell that then
# execs a daemon. A daemon keeps what it inherits for as long as it runs: the rig's own
# lock (fd 9), but also whatever the caller held, e.g. `flock FILE make sandbox-up` left
# FILE locked by the rig's redis-server until `make sandbox-down`.
closefds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
}

redis_up() {
	need redis-server redis-server
	mkdir -p "$run/redis"
	if redis_cli ping >/dev/null 2>&1; then
		return 0
	fi
	(
		closefds
		exec redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
			--dir "$run/redis" --daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log"
	) >/dev/null
	for _ in $(seq 100); do
		redis_cli ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	say "redis did not start; see $run/redis.log"
	exit 1
}

redis_cli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

redis_down() {
	[ -f "$run/redis.pid" ] || return 0
	local pid
	pid=$(cat "$run/redis.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	rm -f "$run/redis.pid"
}

# The image is the root filesystem as it is; its stamp says which build it came from.
docker_image() {
	local stamp
	stamp=$(stat -c %Y "$rootfs/usr/sbin/asterisk")
	if [ "$(docker image inspect -f '{{index .Config.Labels "rootfs"}}' "$image" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	say "importing the root filesystem as docker image $image (once)"
	tar -C "$rootfs" -c . | docker import -c "LABEL rootfs=$stamp" -c 'CMD ["asterisk","-f"]' - "$image" >/dev/null
}

asterisk_up_docker() {
	docker_image
	docker rm -f "$container" >/dev/null 2>&1 || true
	docker run -d --name "$container" --network host \
		-v "$conf:/etc/asterisk:ro" "$image" asterisk -f >/dev/null
}

asterisk_up_chroot() {
	mkdir -p "$rootfs/proc" "$rootfs/dev"
	mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
	mountpoint -q "$rootfs/dev" || mount --bind /dev "$rootfs/dev"
	# Without this host's name in /etc/hosts Asterisk does a DNS lookup on every call.
	cp /etc/hosts "$rootfs/etc/hosts"
	rm -rf "$rootfs/etc/asterisk"
	cp -r "$conf" "$rootfs/etc/asterisk"
	(
		closefds
		exec setsid chroot "$rootfs" asterisk -f
	) >"$run/asterisk.log" 2>&1 </dev/null &
	echo $! >"$run/asterisk.pid"
}

ari_ping() { curl -fsS -m 2 -u "$ari_auth" "$ari/asterisk/ping" >/dev/null 2>&1; }

up() {
	build_rootfs
	need curl curl
	# Web pages (the click-to-call widget, the head of sales' view) are tested in Debian's
	# headless Chromium; recordings are checked with a real decoder.
	need chromium chromium
	need ffprobe ffmpeg
	mkdir -p "$run"
	redis_up
	local mode
	mode=$(runner)
	if ari_ping; then
		say "Asterisk already answers on $ari"
	else
		say "starting Asterisk ($mode)"
		"asterisk_up_$mode"
		echo "$mode" >"$run/mode"
		local i
		for i in $(seq 600); do
			ari_ping && break
			if [ "$i" = 600 ] || ! asterisk_alive "$mode"; then
				say "Asterisk did not answer $ari/asterisk/ping (stopped, or 60 s passed); its log:"
				logs | tail -n 30 >&2
				exit 1
			fi
			sleep 0.1
		done
	fi
	say "up: ARI $ari, SIP udp 127.0.0.1:5060, Redis 127.0.0.1:$redis_port"
}

asterisk_alive() {
	case "$1" in
	docker) [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ] ;;
	chroot) kill -0 "$(cat "$run/asterisk.pid" 2>/dev/null)" 2>/dev/null ;;
	esac
}

logs() {
	case "$(cat "$run/mode" 2>/dev/null)" in
	docker) docker logs "$container" 2>&1 ;;
	chroot) cat "$run/asterisk.log" 2>/dev/null ;;
	esac
}

# asterisk_down stops the rig's Asterisk, whichever way it was started; Redis stays.
asterisk_down() {
	if command -v docker >/dev/null 2>&1 && docker inspect "$container" >/dev/null 2>&1; then
		docker rm -f "$container" >/dev/null 2>&1 || true
	fi
	if [ -f "$run/asterisk.pid" ]; then
		kill "$(cat "$run/asterisk.pid")" 2>/dev/null || true
		rm -f "$run/asterisk.pid"
	fi
	# Whatever runs from the rig's root filesystem goes too (an Asterisk left by a killed run).
	local p
	for p in $(pgrep -x asterisk 2>/dev/null || true); do
		if [ "$(readlink "/proc/$p/root" 2>/dev/null)" = "$rootfs" ]; then kill "$p" 2>/dev/null || true; fi
	done
	for _ in $(seq 100); do
		pgrep -x asterisk >/dev/null 2>&1 || break
		sleep 0.05
	done
	if [ -d "$rootfs" ]; then
		mountpoint -q "$rootfs/dev" && umount "$rootfs/dev" || true
		mountpoint -q "$rootfs/proc" && umount "$rootfs/proc" || true
	fi
}

down() {
	asterisk_down
	redis_down
	rm -f "$run/mode"
	say "down"
}

status() {
	ari_ping && say "Asterisk: up ($(cat "$run/mode" 2>/dev/null || echo unknown))" || say "Asterisk: down"
	redis_cli ping >/dev/null 2>&1 && say "Redis: up on $redis_port" || say "Redis: down"
}

# One rig command at a time per machine: two concurrent `up`s would run debootstrap into
# the same directory or start two Asterisks on one port. The lock is fd 9 of this script
# only: every daemon it starts closes it (closefds), or the daemon would hold the lock for
# as long as it runs and the next rig command would wait forever (CI hung so once). The wait is
# bounded all the same, by debootstrap's worst case, and names the holders when it gives up.
lock_wait=${CRMLINK_RIG_LOCK_WAIT:-600}
case "${1:-}" in
rootfs | up | down | restart-asterisk)
	mkdir -p "$cache"
	exec 9>"$cache/rig.lock"
	if ! flock -w "$lock_wait" 9; then
		say "another rig command has held $cache/rig.lock for ${lock_wait}s; holders:"
		for p in /proc/[0-9]*; do
			[ "${p#/proc/}" = $$ ] && continue
			if ls -l "$p/fd" 2>/dev/null | grep -q "$cache/rig.lock"; then
				say "  pid ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
			fi
		done
		exit 1
	fi
	;;
esac

case "${1:-}" in
rootfs) build_rootfs ;;
up) up ;;
down) down ;;
# restart-asterisk: Asterisk again with this checkout's asterisk-conf/ (a test that needs
# changed configuration), Redis and its data untouched.
restart-asterisk)
	asterisk_down
	up
	;;
status) status ;;
logs) logs ;;
*)
	echo "usage: $0 rootfs|up|down|restart-asterisk|status|logs" >&2
	exit 2
	;;
esac
