// The provider's gRPC server: v1alpha1.CSIDriverProvider (Version, Mount) on a
// unix socket in the driver's provider folder, where the driver looks for
// <provider name>.sock. The socket is the only access control (the driver
// dials it without TLS), so it is created fresh and closed to others.
import { Server, ServerCredentials, status, type ServiceDefinition, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js'
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import * as proto from './proto.ts'
import { MountError, type CsiProvider } from './provider.ts'

export const RUNTIME_NAME = 'vault-injector'

const SERVICE: ServiceDefinition = {
  Version: {
    path: '/v1alpha1.CSIDriverProvider/Version',
    requestStream: false,
    responseStream: false,
    requestSerialize: proto.encodeVersionRequest,
    requestDeserialize: proto.decodeVersionRequest,
    responseSerialize: proto.encodeVersionResponse,
    responseDeserialize: proto.decodeVersionResponse,
  },
  Mount: {
    path: '/v1alpha1.CSIDriverProvider/Mount',
    requestStream: false,
    responseStream: false,
    requestSerialize: proto.encodeMountRequest,
    requestDeserialize: proto.decodeMountRequest,
    responseSerialize: proto.encodeMountResponse,
    responseDeserialize: proto.decodeMountResponse,
  },
}

const CODES = { INVALID_ARGUMENT: status.INVALID_ARGUMENT, PERMISSION_DENIED: status.PERMISSION_DENIED, UNKNOWN: status.UNKNOWN }

export interface ProviderServer {
  socketPath: string
  close(): Promise<void>
}

export async function serveProvider(provider: CsiProvider, socketPath: string, runtimeVersion: string): Promise<ProviderServer> {
  // A socket left by an earlier run would make bind fail; anything else there is not ours to remove.
  try {
    if (lstatSync(socketPath).isSocket()) rmSync(socketPath)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  mkdirSync(dirname(socketPath), { recursive: true })
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 })
  server.addService(SERVICE, {
    Version: (_call: ServerUnaryCall<proto.VersionRequest, proto.VersionResponse>, callback: sendUnaryData<proto.VersionResponse>) => {
      callback(null, { version: 'v1alpha1', runtimeName: RUNTIME_NAME, runtimeVersion })
    },
    Mount: (call: ServerUnaryCall<proto.MountRequest, proto.MountResponse>, callback: sendUnaryData<proto.MountResponse>) => {
      provider.mount(call.request).then(
        (outcome) => callback(null, outcome.response),
        (error: unknown) => {
          const code = error instanceof MountError ? CODES[error.grpcCode] : status.UNKNOWN
          callback({ code, details: (error as Error).message })
        },
      )
    },
  })
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())))
  chmodSync(socketPath, 0o660)
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 10_000)
        server.tryShutdown(() => {
          clearTimeout(force)
          provider.close()
          rmSync(socketPath, { force: true })
          resolve()
        })
      }),
  }
}
