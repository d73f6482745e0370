-- CreateTable
CREATE TABLE "Routine" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "owner" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "chatId" TEXT NOT NULL,
    "triggerType" TEXT NOT NULL,
    "cron" TEXT,
    "everySeconds" INTEGER,
    "runAt" DATETIME,
    "timezone" TEXT,
    "instructions" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL,
    "activeHours" TEXT,
    "maxTokensPerRun" INTEGER NOT NULL,
    "maxTokensPerDay" INTEGER,
    "maxRunsPerDay" INTEGER,
    "missedRuns" TEXT NOT NULL,
    "webhookSecret" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "RoutineRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "routineId" TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    "scheduledAt" DATETIME,
    "startedAt" DATETIME NOT NULL,
    "finishedAt" DATETIME,
    "outcome" TEXT NOT NULL,
    "detail" TEXT,
    "tokensIn" INTEGER NOT NULL,
    "tokensOut" INTEGER NOT NULL,
    "inputHash" TEXT,
    "inputSeq" INTEGER,
    "messageId" TEXT,
    "worker" TEXT,
    CONSTRAINT "RoutineRun_routineId_fkey" FOREIGN KEY ("routineId") REFERENCES "Routine" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "Routine_owner_name_key" ON "Routine"("owner", "name");

-- CreateIndex
CREATE INDEX "RoutineRun_routineId_startedAt_idx" ON "RoutineRun"("routineId", "startedAt");
