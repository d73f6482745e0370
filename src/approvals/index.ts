export { ApprovalGateway, RequestError, type Applier, type DecideOutcome, type GatewayOptions, type SecretHostCheck } from './gateway.js';
export { ApprovalStore, REQUEST_ID } from './store.js';
export { loadRules, parseRules, type Rule } from './rules.js';
export { registerApprovalApi, approvalView } from './api.js';
export { createRequestCapabilityTool, REQUEST_CAPABILITY_PROMPT } from './tool.js';
export { mergeApprovedGrants, type ApprovedGrants } from './grants.js';
export { secretHostCheck } from './secret-check.js';
export * from './types.js';
