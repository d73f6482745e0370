export { AuditLog, NO_AUDIT, NO_DURABLE_AUDIT, toAuditEntry, type AuditEntry, type AuditEvent, type AuditLogOptions, type AuditSink, type DurableAuditSink } from './log.js';
export { verifyAudit, type VerifyProblem, type VerifyReport } from './verify.js';
export { queryAudit, formatAuditLine, type AuditQuery } from './query.js';
export { CHECKPOINT_FILE, checkpointPath, loadAuditKey, readCheckpoints } from './checkpoints.js';
export { safeAuditData, type SecretFinder } from './safe-data.js';
export { canonicalJson, entryHash, GENESIS_HASH } from './canonical.js';
