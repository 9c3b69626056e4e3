# syntax=docker/dockerfile:1
# warren as a drop-in for RabbitMQ's image (`rabbitmq:3-management`): same ports, same volume,
# same environment variables, /etc/rabbitmq/rabbitmq.conf and conf.d read as RabbitMQ reads
# them, and the command-line tools under RabbitMQ's names.
#
#   docker build -t warren .
#   docker run -p 5672:5672 -p 15672:15672 warren

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY config config
COPY src src
RUN cargo build --release --locked --bin warren \
    && strip target/release/warren

FROM debian:bookworm-slim
# The same user, group and home as RabbitMQ's image, so that volumes and files made for it
# keep their owner.
RUN groupadd --system --gid 999 rabbitmq \
    && useradd --system --uid 999 --gid rabbitmq --home-dir /var/lib/rabbitmq \
        --no-create-home --shell /usr/sbin/nologin rabbitmq \
    && mkdir -p /var/lib/rabbitmq /etc/rabbitmq/conf.d /var/log/rabbitmq \
    && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq /var/log/rabbitmq \
    && chmod 1777 /var/lib/rabbitmq
COPY --from=build /src/target/release/warren /usr/local/bin/warren
# One binary answers to every name (it looks at how it was called).
RUN for tool in rabbitmq-server rabbitmqctl rabbitmq-diagnostics rabbitmq-plugins; do \
        ln -s warren /usr/local/bin/$tool; \
    done
# rabbitmqadmin (v1) and python3, as rabbitmq:3-management has them: Testcontainers' RabbitMQ
# module and many setup scripts run it inside the container. Fetched from RabbitMQ's
# repository when the image is built.
ARG RABBITMQADMIN_VERSION=3.13.7
ADD --chmod=755 https://raw.githubusercontent.com/rabbitmq/rabbitmq-server/v${RABBITMQADMIN_VERSION}/deps/rabbitmq_management/bin/rabbitmqadmin /usr/local/bin/rabbitmqadmin
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && rabbitmqadmin --version
COPY docker/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY --chown=rabbitmq:rabbitmq docker/conf.d/ /etc/rabbitmq/conf.d/

# As RabbitMQ's image: the cookie lives in HOME, the data in /var/lib/rabbitmq/mnesia/NODENAME
# (so give the container a stable hostname, or set RABBITMQ_NODENAME), logs on the console.
ENV HOME=/var/lib/rabbitmq \
    RABBITMQ_DATA_DIR=/var/lib/rabbitmq \
    RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia \
    RABBITMQ_LOGS=-
VOLUME /var/lib/rabbitmq

# 5672 AMQP, 5671 AMQPS (with ssl_options), 15672 management, 15692 Prometheus,
# 25672 the command-line tools' port.
EXPOSE 5672 5671 15672 15692 25672

HEALTHCHECK --interval=10s --timeout=10s --start-period=10s --retries=5 \
    CMD rabbitmq-diagnostics -q ping

ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
