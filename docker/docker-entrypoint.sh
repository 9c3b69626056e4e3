#!/usr/bin/env bash
# The container's entrypoint, as RabbitMQ's image behaves:
#   docker run warren                      -> rabbitmq-server
#   docker run warren -flag ...            -> rabbitmq-server -flag ...
#   docker run warren rabbitmqctl status   -> that command
# As root, the broker is started as the rabbitmq user (when the image has one) after the data
# directory is handed to it. Everything else (RABBITMQ_DEFAULT_USER/PASS/VHOST,
# RABBITMQ_NODENAME, RABBITMQ_NODE_PORT, RABBITMQ_MNESIA_BASE, RABBITMQ_CONFIG_FILE,
# /etc/rabbitmq/rabbitmq.conf and conf.d) is read by warren itself.
set -euo pipefail

if [[ ${1:-} == -* ]]; then
	set -- rabbitmq-server "$@"
fi

data=${RABBITMQ_DATA_DIR:-${HOME:-/var/lib/rabbitmq}}

# RabbitMQ's images wrote RABBITMQ_ERLANG_COOKIE to the cookie file; warren's tools read the
# variable too, but a file keeps `docker exec ... rabbitmqctl` working without it.
if [[ -n ${RABBITMQ_ERLANG_COOKIE:-} ]]; then
	cookie="${HOME:-/var/lib/rabbitmq}/.erlang.cookie"
	if [[ ! -e $cookie ]] || [[ $(cat "$cookie") != "$RABBITMQ_ERLANG_COOKIE" ]]; then
		if [[ -e $cookie ]]; then
			echo >&2 "warning: $cookie differs from RABBITMQ_ERLANG_COOKIE; the variable wins"
		fi
		mkdir -p "$(dirname "$cookie")"
		rm -f "$cookie" # it may be read-only (0400), as warren and Erlang create it
		(umask 077 && printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$cookie")
	fi
fi

if [[ $1 == rabbitmq-server ]] && [[ $(id -u) == 0 ]] && id rabbitmq >/dev/null 2>&1; then
	dirs=("$data")
	if [[ -n ${RABBITMQ_MNESIA_BASE:-} ]]; then
		dirs+=("$RABBITMQ_MNESIA_BASE")
	fi
	mkdir -p "${dirs[@]}"
	# Hand over what a previous root run or a bind mount left owned by someone else.
	find "${dirs[@]}" \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +
	exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$BASH_SOURCE" "$@"
fi

exec "$@"
