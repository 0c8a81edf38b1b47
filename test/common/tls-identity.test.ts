/**
 * TLS identities (common/tls-identity.ts): a generated certificate completes a real TLS 1.3 handshake
 * with Node's own `tls`, and its fingerprint is the one Node reports for the peer.
 */
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { certificateFingerprint, generateTlsIdentity, normaliseFingerprint } from '../../common/tls-identity.js';

describe('TLS identity', () => {
  it('when a server presents a generated identity, then a TLS 1.3 client sees the certificate whose fingerprint we computed', async () => {
    const identity = await generateTlsIdentity('hsm-sim test', { ipAddresses: ['127.0.0.1'] });
    expect(identity.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(certificateFingerprint(identity.certPem)).toBe(identity.fingerprint);
    const server = createServer({ key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3' }, (socket) => socket.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const seen = await new Promise<{ protocol: string | null; fingerprint: string }>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false }, () => {
          const peer = socket.getPeerX509Certificate();
          resolve({ protocol: socket.getProtocol(), fingerprint: peer ? normaliseFingerprint(peer.fingerprint256) ?? '' : '' });
          socket.destroy();
        });
        socket.on('error', reject);
      });
      expect(seen).toEqual({ protocol: 'TLSv1.3', fingerprint: identity.fingerprint });
    } finally {
      server.close();
    }
  });

  it('when two identities are generated, then their keys and fingerprints differ', async () => {
    const [a, b] = await Promise.all([generateTlsIdentity('a'), generateTlsIdentity('b')]);
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(a.keyPem).not.toBe(b.keyPem);
  });

  it('when a fingerprint is written with colons, a prefix or in uppercase, then it normalises; anything else is null', () => {
    const hex = 'ab'.repeat(32);
    expect(normaliseFingerprint('AB:'.repeat(31) + 'AB')).toBe(hex);
    expect(normaliseFingerprint(`sha256:${hex.toUpperCase()}`)).toBe(hex);
    expect(normaliseFingerprint('ab'.repeat(31))).toBeNull();
    expect(normaliseFingerprint('zz'.repeat(32))).toBeNull();
  });

  it('when the name holds characters a distinguished name would interpret, then it is refused', async () => {
    await expect(generateTlsIdentity('a,CN=b')).rejects.toThrow(/certificate name/);
  });
});
