# syntax=docker/dockerfile:1.7
# A Node.js stdio MCP server behind the Lifeline gateway, in one image. The gateway runs the
# server as its child and speaks MCP to it over stdin/stdout; clients reach it over Streamable
# HTTP on :8080. Used by deploy/kubernetes/overlays/stdio.
#
# Build from the repository root:
#   docker build -f deploy/examples/stdio-node.Dockerfile \
#     -t registry.example.com/lifeline-stdio-everything:0.1.0 .
#
# To wrap another server: change the package in the `server` stage and the command after `--`.

FROM rust:1.95.0-bookworm AS lifeline
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lifeline \
 && install -D -m 0755 target/release/lifeline /out/lifeline

# Install the server at build time, at an exact version: nothing is downloaded when the pod
# starts (`npx pkg` at runtime would fetch whatever is newest, or fail without egress).
FROM node:22-bookworm-slim AS server
WORKDIR /app
RUN npm install --omit=dev --no-audit --no-fund --save-exact \
      @modelcontextprotocol/server-everything@2026.8.31 \
 && npm cache clean --force

FROM node:22-bookworm-slim
COPY --from=server /app /app
COPY --from=lifeline /out/lifeline /usr/local/bin/lifeline
# The package's bin (mcp-server-everything) on PATH, so the child is started directly, not
# through npx/npm (which would add a process layer between the gateway and the server).
ENV PATH=/app/node_modules/.bin:$PATH \
    NODE_ENV=production
# Same numeric non-root user as the main image; the files are root-owned and read-only to it.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["lifeline"]
CMD ["gateway", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090", \
     "--drain-delay", "5s", "--drain-timeout", "25s", \
     "--", "mcp-server-everything", "stdio"]
