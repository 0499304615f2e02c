/**
 * The supernode's scheduler module, the very code the service runs. Imported
 * from the supernode's build output until `@shoal/supernode` re-exports it.
 */
export { Scheduler, type SchedulerInit, type PieceAssignment } from '../../../services/supernode/dist/src/scheduler/index.js';
