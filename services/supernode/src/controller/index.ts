export * from './controller.js';
export { EVENT_PULL_FAILED, EVENT_PULL_SUCCEEDED, EVENT_STORE_ONLY, EVENT_TOO_LARGE, type ImagePullJobSummary, type PreheatStarter } from './job-runner.js';
export * from './credentials.js';
export * from './kube.js';
export * from './kube-connect.js';
export * from './select.js';
export * from './spec.js';
export * from './leader.js';
