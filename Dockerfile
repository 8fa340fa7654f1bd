# The API image; the sidecar runs from it too (docker-compose.yml). Build: docker build -t seat-reservation .
# Stage 1 bundles src/ into plain JavaScript (npm run build -> dist/); the image runs no transpiler.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/.data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY drizzle ./drizzle
COPY --from=build /app/dist ./dist
# Only the embedded database (no DATABASE_URL) writes to disk.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself as PID 1 (not npm) so SIGTERM reaches the graceful shutdown of src/entry/node.ts.
# The heap flags are npm start's: they keep one instance near 150 MB under load (BENCHMARKS.md).
CMD ["node", "--max-old-space-size=256", "--max-semi-space-size=8", "dist/node.js"]
