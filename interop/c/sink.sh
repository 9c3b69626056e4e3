#!/usr/bin/env bash
# The command amqp-consume runs for each message (body on stdin):
#   amqp-consume ... bash sink.sh DIR
# writes the body to DIR/NNNN (numbered in arrival order, renamed into place when complete).
# amqp-consume acks a message only when this command exits 0: it exits 0 unless DIR/.noack
# exists, and then only for message n when DIR/.ack-n exists.
dir=$1
n=$(($(cat "$dir/.n" 2>/dev/null || echo 0) + 1))
echo "$n" >"$dir/.n"
f=$(printf '%s/%04d' "$dir" "$n")
cat >"$f.part" && mv "$f.part" "$f"
if [ -e "$dir/.noack" ] && [ ! -e "$dir/.ack-$n" ]; then exit 1; fi
exit 0
