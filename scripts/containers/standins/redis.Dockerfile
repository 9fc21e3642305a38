# Stand-in for redis:7.4.2-alpine3.21 where Docker Hub is not reachable: Debian's redis-server on the local
# base image, run like the official image (data in /data, `redis-server ...` as the command, redis-cli for
# the health check). Built by scripts/containers/build.sh and tagged with the name docker-compose.yml uses.
ARG BASE_IMAGE=ragd-local/python:3.11-bookworm
FROM ${BASE_IMAGE}
# Debian's redis-server keeps protected mode on, which refuses the other containers; the official image
# turns it off (its network is the boundary), and so does this entrypoint.
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data \
 && printf '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; exec redis-server "$@" --protected-mode no; fi\nexec "$@"\n' \
    > /usr/local/bin/redis-entrypoint && chmod 755 /usr/local/bin/redis-entrypoint
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]
CMD ["redis-server"]
