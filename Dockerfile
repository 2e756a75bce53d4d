# convd container image: built on Debian 12 with the -dev packages, run on
# Debian 12 slim with only the runtime libraries, as a non-root user.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config libopenblas-dev \
      libjansson-dev libmicrohttpd-dev libuv1-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY core core
COPY proto proto
COPY server server
RUN make -j"$(nproc)" build/convd && strip build/convd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libjansson4 libmicrohttpd12 libuv1 \
      libcurl4 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin convd
COPY --from=build /src/build/convd /usr/local/bin/convd
COPY --chown=root:root examples/separable_classic /models/separable_classic
COPY --chown=root:root examples/standard_classic /models/standard_classic
COPY --chown=root:root examples/mobilenet_v1 /models/mobilenet_v1
COPY --chown=root:root examples/atrous /models/atrous
# convd parallelises itself (workers x threads per job, sized from the
# cgroup CPU quota at start); OpenBLAS must not add threads of its own.
ENV OPENBLAS_NUM_THREADS=1 \
    CONVD_PORT=8080 \
    CONVD_MODELS=/models
USER 10001:10001
EXPOSE 8080
VOLUME ["/models"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["convd", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["convd", "serve", "--host", "0.0.0.0"]
