/** The supernode's scheduler module: the very code the service runs. */
export { Scheduler, type SchedulerInit, type PieceAssignment } from '@shoal/supernode';
