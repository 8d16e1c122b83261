#!/bin/sh
# The tern runner image's entrypoint. ECS starts the container with the task definition's
# command, `tern execute`, and RunTask's overrides set TERN_RUN_ID and TERN_BACKEND. This script
# checks that what the runner needs is there, with a message a person can act on in the task's
# logs, then replaces itself with the command (exec), so StopTask's SIGTERM reaches the runner.
set -eu

if [ "$#" -eq 0 ]; then
  set -- tern execute
fi

if [ "$1" = "tern" ] && [ "${2:-}" = "execute" ]; then
  if [ "$#" -lt 3 ] && [ -z "${TERN_RUN_ID:-}" ]; then
    echo "tern-runner: TERN_RUN_ID is not set. This image runs one flow run: start it through a FargateTaskEnvironment (its RunTask overrides set TERN_RUN_ID and TERN_BACKEND), or pass the run id: tern execute <runId>." >&2
    exit 64
  fi
  if [ -z "${TERN_BACKEND:-}" ]; then
    echo "tern-runner: TERN_BACKEND is not set: the runner cannot find its run. Set it to the agent's backend, for example dynamodb://tern-state?region=eu-west-1." >&2
    exit 64
  fi
  case "$TERN_BACKEND" in
    sqlite:*)
      echo "tern-runner: TERN_BACKEND is $TERN_BACKEND, a file on another machine. Use the shared backend: dynamodb://<table>?region=<region>." >&2
      exit 64
      ;;
  esac
fi

# Verified bundles are written under TERN_HOME before import: a writable place in a container
# whose root filesystem may be read-only.
export TERN_HOME="${TERN_HOME:-/tmp/tern}"
exec "$@"
