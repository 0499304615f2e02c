export * from './controller.js';
export * from './credentials.js';
export * from './kube.js';
export * from './kube-connect.js';
export * from './select.js';
export * from './spec.js';
export * from './leader.js';
