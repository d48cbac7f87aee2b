// The floor: a minimal fastify HTTPS server that answers every AdmissionReview
// with allowed: true. What it costs is TLS, HTTP and JSON alone.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const app = Fastify({
  https: { cert: readFileSync(process.env.CERT_FILE!), key: readFileSync(process.env.KEY_FILE!), minVersion: 'TLSv1.2' },
  bodyLimit: 6 * 1024 * 1024,
})
app.post('/mutate', async (request) => {
  const review = request.body as { apiVersion?: string; request?: { uid?: string } }
  return { apiVersion: review.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request?.uid ?? '', allowed: true } }
})
app.get('/health/ready', async (_request, reply) => reply.code(204).send())
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
