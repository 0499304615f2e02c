export * from './dht-discovery.js';
