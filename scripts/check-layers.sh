#!/usr/bin/env bash
# check-layers.sh: fail when a package imports a higher layer than docs/architecture.md allows.
#
#   cmd -> appliance -> (images, transfer) -> stdlib + libraries;  images never imports transfer;
#   cron and pidmgr are leaves. cron/clock, cron/exitcode, cron/executable and cron/testkit import nothing of snapferry and may
#   be imported by every package (the shared clock, the exit statuses, the running binary, the test helpers).
#
# Run by `make lint`. `check-layers.sh --self-test` proves that a forbidden edge is caught.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/snapferry/snapferry

# allowed FROM-prefix TO-prefix...: what a package under FROM may import of this module.
allowed() {
	case "$1" in
	cmd/*) echo "cmd appliance images transfer cron pidmgr" ;;
	appliance | appliance/*) echo "appliance images transfer cron pidmgr" ;;
	transfer | transfer/*) echo "transfer images" ;;
	images | images/*) echo "images" ;;
	cron | cron/*) echo "cron" ;;
	pidmgr | pidmgr/*) echo "pidmgr" ;;
	*) echo "" ;;
	esac
}

# check reads "package import" lines (module-relative) and prints each forbidden edge.
check() {
	local bad=0 from to ok layer
	while read -r from to; do
		case "$to" in cron/clock | cron/exitcode | cron/executable | cron/testkit) continue ;; esac
		ok=0
		for layer in $(allowed "$from"); do
			if [[ $to == "$layer" || $to == "$layer"/* ]]; then ok=1; fi
		done
		if ((ok == 0)); then
			echo "layering: $from imports $to (see docs/architecture.md)"
			bad=1
		fi
	done
	return $bad
}

edges() {
	${GO:-go} list -f '{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}}{{"\n"}}{{end}}' ./... |
		grep " $mod/" | sed "s#$mod/##g"
}

if [[ ${1:-} == --self-test ]]; then
	if printf 'images/repo transfer/wire\n' | check >/dev/null; then
		echo "check-layers self-test: images -> transfer was not caught" >&2
		exit 1
	fi
	if printf 'cron/history pidmgr\n' | check >/dev/null; then
		echo "check-layers self-test: cron -> pidmgr was not caught" >&2
		exit 1
	fi
	printf 'appliance/vmjob images/repo\nimages/repo cron/clock\n' | check
	echo "check-layers self-test: ok"
	exit 0
fi
edges | check
