/**
 * A Firestore emulator (the local stack's, or one test file's): `@firestore-emulator/server` (the real Firestore gRPC
 * protocol, in memory) on a free loopback port, with Firestore's transaction isolation added
 * (./firestore-transactions.ts). The official client reaches it through FIRESTORE_EMULATOR_HOST.
 */
import { createRequire } from 'node:module';
import { FirestoreServer } from '@firestore-emulator/server';
import { isolateTransactions } from './firestore-transactions.js';

interface GrpcServer {
  bindAsync(address: string, credentials: unknown, callback: (error: Error | null, port: number) => void): void;
}

export interface FirestoreEmulator {
  host: string;
  stop(): void;
}

export async function startFirestore(): Promise<FirestoreEmulator> {
  const emulator = new FirestoreServer();
  // Its own start() binds 0.0.0.0; everything here stays on loopback, so bind its gRPC server here instead,
  // with the grpc-js copy the emulator itself uses.
  const grpc = createRequire(createRequire(import.meta.url).resolve('@firestore-emulator/server'))('@grpc/grpc-js') as {
    ServerCredentials: { createInsecure(): unknown };
  };
  const server = (emulator as unknown as { server: GrpcServer }).server;
  isolateTransactions(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { host: `127.0.0.1:${port}`, stop: () => emulator.stop() };
}
