# mlflow-connect: serve MLflow (ONNX flavor) models over gRPC, gRPC-Web, Connect and REST on one port.
# docker build -t mlflow-connect . && docker run -p 50051:50051 mlflow-connect
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Scripts off: `prepare` would build before the sources are here (and onnxruntime-node's
# download step is skipped anyway, its CPU binaries ship in the package).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY gen gen
COPY web-demo web-demo
COPY scripts/build-web-demo.js scripts/bundle-server.js scripts/
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /app
# ONNX string operators (StringNormalizer) need a valid locale; Debian has C.UTF-8.
ENV NODE_ENV=production LANG=C.UTF-8 LC_ALL=C.UTF-8 MLFLOW_CONNECT_HOST=0.0.0.0 MLFLOW_CONNECT_PORT=50051
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
COPY bin bin
COPY models models
USER node
EXPOSE 50051
# GET /ping, over TLS when MLFLOW_CONNECT_TLS_CERT is set; /ping stays open under --auth-token.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD ["node", "bin/healthcheck.js"]
ENTRYPOINT ["node", "bin/mlflow-connect.js", "serve"]
CMD ["models/iris"]
