# Stand-in for prom/prometheus:v2.55.1 where Docker Hub is not reachable: Debian's prometheus on the local
# base image, run like the official image (`prometheus` is the entrypoint, the compose file's command its
# flags, storage in /prometheus, wget for the health check). Built by scripts/containers/build.sh.
ARG BASE_IMAGE=ragd-local/python:3.11-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
