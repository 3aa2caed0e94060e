#!/bin/sh
# push.sh: what examples/push/backend does, with curl. It pushes to a user, a
# group and everyone through the push server's HTTP API and prints the
# answers; given a client ID (from a client's welcome) it first binds that
# client to the uid and puts it in the group.
#
#   WORKERMAN_PUSH_API_KEY=secret ./examples/push/push.sh [client_id]
#
# API (default http://127.0.0.1:8001), PUSH_UID (alice) and GROUP (news)
# change the rest.
set -eu
API=${API:-http://127.0.0.1:8001}
KEY=${WORKERMAN_PUSH_API_KEY:?set WORKERMAN_PUSH_API_KEY to the -api-key of the server}
PUSH_UID=${PUSH_UID:-alice}
GROUP=${GROUP:-news}

call() { # method, JSON body: prints "method body: status answer"
	resp=$(curl -sS -w '%{http_code}' -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' -d "$2" "$API/api/$1") || exit 1
	answer=$(printf '%s' "${resp%???}")
	status=$(printf '%s' "$resp" | tail -c 3)
	echo "$1 $2: $status $answer"
	[ "$status" = 200 ]
}

if [ $# -gt 0 ]; then
	call bindUid "{\"client_id\":\"$1\",\"uid\":\"$PUSH_UID\"}"
	call joinGroup "{\"client_id\":\"$1\",\"group\":\"$GROUP\"}"
fi
call sendToUid "{\"uid\":\"$PUSH_UID\",\"message\":\"hello $PUSH_UID\"}"
call sendToGroup "{\"group\":\"$GROUP\",\"message\":\"hello $GROUP\"}"
call sendToAll '{"message":"hello everyone"}'
