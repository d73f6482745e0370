import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { route } from '../gateway/access.js';
import type { Logger } from '../logger.js';
import { enqueueRun, runIdOf } from './queue.js';
import type { RoutineStore } from './store.js';
import { syncSchedules } from './sync.js';

/*
 * The two things the CLI asks of a running hub: "run this routine now" and "I changed the routines
 * table, apply it now". Everything else the CLI does straight on the database. Both need the API
 * token itself (access 'token'): they are owner controls, not something a browser session should reach.
 */

export interface RoutineApiDeps {
  store: RoutineStore;
  queue: Queue;
  owner: string;
  logger: Logger;
}

const nameParam = z.strictObject({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'not a routine name') });

export function registerRoutineApi(app: FastifyInstance, deps: RoutineApiDeps): void {
  app.post('/api/routines/sync', route('token'), async () => {
    return syncSchedules(deps.store, deps.queue, deps.logger);
  });

  app.post('/api/routines/:name/run', route('token'), async (req, reply) => {
    const p = nameParam.safeParse(req.params);
    if (!p.success) return reply.code(400).send({ error: `name: ${p.error.issues[0]?.message}` });
    const routine = await deps.store.getByName(deps.owner, p.data.name);
    if (!routine) return reply.code(404).send({ error: `no routine named "${p.data.name}": see \`bulwark routine list\`` });
    const jobId = await enqueueRun(deps.queue, routine.id, 'manual');
    return reply.code(202).send({ routine: routine.name, runId: runIdOf(jobId) });
  });
}
