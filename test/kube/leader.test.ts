// Leader election on a coordination.k8s.io/v1 Lease, through the real
// client-node against the fake API (test/helpers/fake-api.ts). Time is a
// number the test moves; timers fire when the test says.
import t from 'tap'
import { LeaderElector, leaseStore } from '../../src/kube/leader.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { manualTimers, type ManualTimers } from '../helpers/manual-timers.ts'

type Obj = Record<string, any>
const NS = 'vault-injector'
const NAME = 'vault-injector-leader'
const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${NAME}`
const quiet = { info() {}, warn() {}, error() {} }

interface Candidate {
  elector: LeaderElector
  timers: ManualTimers
}

function candidates(api: FakeApi, clock: { ms: number }, events: string[]): (identity: string) => Candidate {
  return (identity) => {
    const timers = manualTimers()
    const elector = new LeaderElector({
      store: leaseStore(api.kubeConfig, NS, NAME),
      namespace: NS,
      name: NAME,
      identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      renewIntervalMs: 5_000,
      now: () => clock.ms,
      timers,
      logger: quiet,
      onChange: (leading) => events.push(`${identity}:${leading}`),
    })
    return { elector, timers }
  }
}

t.test('one leader; renewals keep it; takeover only after a whole unrenewed lease duration; release on stop', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.parse('2026-11-22T10:00:00Z') }
  const events: string[] = []
  const candidate = candidates(api, clock, events)
  const a = candidate('pod-a').elector
  const b = candidate('pod-b').elector

  t.equal(await a.tryAcquireOrRenew(), true, 'the first candidate creates the Lease')
  let lease = api.objects.get(LEASE)!
  t.equal(lease.spec.holderIdentity, 'pod-a')
  t.equal(lease.spec.leaseDurationSeconds, 15)
  t.equal(await b.tryAcquireOrRenew(), false, 'the second follows')

  clock.ms += 10_000
  t.equal(await a.tryAcquireOrRenew(), true, 'the holder renews')
  t.not(api.objects.get(LEASE)!.spec.renewTime, lease.spec.renewTime, 'renewTime moved')
  clock.ms += 10_000
  t.equal(await b.tryAcquireOrRenew(), false, 'b sees the renewed version for the first time now: its 15 s start here')
  clock.ms += 14_000
  t.equal(await b.tryAcquireOrRenew(), false, '14 s unchanged by b\'s clock: not free yet')
  clock.ms += 1_000
  t.equal(await b.tryAcquireOrRenew(), true, '15 s unchanged: taken over')
  lease = api.objects.get(LEASE)!
  t.equal(lease.spec.holderIdentity, 'pod-b')
  t.equal(lease.spec.leaseTransitions, 1)
  t.equal(await a.tryAcquireOrRenew(), false, 'the old holder steps down when it sees the new holder')

  await b.stop()
  t.equal(api.objects.get(LEASE)!.spec.holderIdentity, '', 'released on stop')
  t.equal(await a.tryAcquireOrRenew(), true, 'a released Lease is taken at once')
  t.equal(await b.tryAcquireOrRenew(), false, 'a stopped elector never competes again')
  t.same(events, ['pod-a:true', 'pod-b:true', 'pod-a:false', 'pod-b:false', 'pod-a:true'])
})

t.test('expiry is timed by the follower\'s own clock, so a holder with a skewed clock is not deposed', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const holderClock = { ms: Date.parse('2026-11-22T09:00:00Z') } // an hour behind
  const followerClock = { ms: Date.parse('2026-11-22T10:00:00Z') }
  const events: string[] = []
  const a = candidates(api, holderClock, events)('pod-a').elector
  const b = candidates(api, followerClock, events)('pod-b').elector
  await a.tryAcquireOrRenew()
  for (let i = 0; i < 5; i++) {
    t.equal(await b.tryAcquireOrRenew(), false, `round ${i}: the renewTime looks an hour old to b, yet the Lease keeps changing`)
    holderClock.ms += 5_000
    followerClock.ms += 5_000
    await a.tryAcquireOrRenew()
  }
  t.same(events, ['pod-a:true'])
})

t.test('two candidates racing for a free Lease: exactly one wins', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const events: string[] = []
  const candidate = candidates(api, clock, events)
  const all = ['pod-a', 'pod-b', 'pod-c'].map((id) => candidate(id).elector)
  const results = await Promise.all(all.map((c) => c.tryAcquireOrRenew()))
  t.equal(results.filter(Boolean).length, 1, `one winner: ${results}`)
  const winner = all[results.indexOf(true)]!
  t.equal(api.objects.get(LEASE)!.spec.holderIdentity, winner.identity)
})

t.test('a holder that cannot renew keeps leading until its renew deadline, then steps down', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const events: string[] = []
  const { elector: a, timers } = candidates(api, clock, events)('pod-a')
  await a.tryAcquireOrRenew()
  t.same(timers.pending(), [{ ms: 10_000 }], 'a renew deadline is armed')
  api.failNext('GET', LEASE, 500, 2)
  clock.ms += 5_000
  t.equal(await a.tryAcquireOrRenew(), true, 'one failed renewal: still leading')
  t.equal(a.leading, true)
  t.equal(timers.fire(10_000), 1, 'the deadline passes without a renewal')
  t.equal(a.leading, false, 'stepped down')
  t.same(events, ['pod-a:true', 'pod-a:false'])
  clock.ms += 5_000
  t.equal(await a.tryAcquireOrRenew(), false, 'still failing: still not leading')
  t.equal(await a.tryAcquireOrRenew(), true, 'the API answers again; the Lease is still its own, so it leads again')
})

t.test('a successful renewal re-arms the deadline; losing a write race steps down at once', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const events: string[] = []
  const { elector: a, timers } = candidates(api, clock, events)('pod-a')
  await a.tryAcquireOrRenew()
  clock.ms += 5_000
  await a.tryAcquireOrRenew()
  t.same(timers.pending(), [{ ms: 10_000 }], 'one deadline, the latest')
  // Someone else writes the Lease between our read and our write.
  const lease = api.objects.get(LEASE)!
  api.put(LEASE, { ...lease, spec: { ...lease.spec, holderIdentity: 'pod-x', renewTime: new Date(clock.ms).toISOString() } })
  t.equal(await a.tryAcquireOrRenew(), false, 'the Lease now names pod-x')
  t.equal(a.leading, false)
  t.same(timers.pending(), [], 'no deadline left armed')
})

t.test('stop waits for a round in flight, so the release is the last write', async (t) => {
  // Stopped before a round starts: the round does nothing.
  const early = await startFakeApi()
  t.teardown(() => early.close())
  const idle = candidates(early, { ms: Date.now() }, [])('pod-z').elector
  const skipped = idle.tryAcquireOrRenew()
  await idle.stop()
  t.equal(await skipped, false)
  t.equal(early.objects.size, 0, 'no Lease written')

  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.now() }
  const a = candidates(api, clock, [])('pod-a').elector
  const round = a.tryAcquireOrRenew()
  while (!api.requests.some((r) => r.path === LEASE)) await new Promise((resolve) => setImmediate(resolve))
  const stopped = a.stop() // the round has read the Lease and is about to create it
  t.equal(await round, true)
  await stopped
  const lease: Obj = api.objects.get(LEASE)!
  t.equal(lease.spec.holderIdentity, '', 'released after the acquisition, not overwritten by it')
  t.equal(a.leading, false)
})

t.test('options must leave room: renew interval < renew deadline < lease duration', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  t.throws(
    () => new LeaderElector({ store: leaseStore(api.kubeConfig, NS, NAME), namespace: NS, name: NAME, identity: 'x', leaseDurationMs: 10_000, renewDeadlineMs: 10_000, logger: quiet, onChange() {} }),
    /renewInterval < renewDeadline < leaseDuration/,
  )
})
