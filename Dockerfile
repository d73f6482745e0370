# Bulwark hub image. Build: docker compose build (or docker build -t bulwark .)
FROM node:22-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# whatsapp-web.js depends on puppeteer, whose install script would download its own Chrome; the hub
# uses the system's Chromium instead (see WITH_CHROMIUM below).
ENV PUPPETEER_SKIP_DOWNLOAD=1
RUN npm ci --no-audit --no-fund
COPY tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
# The WhatsApp channel drives WhatsApp Web in Chromium: build with --build-arg WITH_CHROMIUM=1 to use it.
ARG WITH_CHROMIUM=0
RUN if [ "$WITH_CHROMIUM" = "1" ]; then apt-get update && apt-get install -y --no-install-recommends chromium && rm -rf /var/lib/apt/lists/*; fi
ENV NODE_ENV=production \
    BULWARK_HOME=/data \
    BULWARK_HOST=0.0.0.0 \
    BULWARK_PORT=8787
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/prisma ./prisma
RUN ln -s /app/bin/bulwark.mjs /usr/local/bin/bulwark && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8787
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8787/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/bulwark.mjs", "start"]
