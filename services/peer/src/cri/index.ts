export * from './image-service.js';
export * from './runtime-puller.js';
