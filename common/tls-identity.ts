/**
 * TLS identities for the device link and the API (docs/device-protocol.md "The link"): a P-256 key
 * generated here, in the process that will hold it, and a self-signed X.509 certificate over it,
 * built with @peculiar/x509 (RFC 5280). A peer is recognised by the SHA-256 fingerprint of its
 * certificate's DER bytes, as Node's `X509Certificate.fingerprint256` prints it, in lowercase hex
 * without colons.
 */
import 'reflect-metadata';
import { X509Certificate, createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TlsIdentity {
  /** PKCS#8 PEM of the private key. */
  readonly keyPem: string;
  /** PEM of the self-signed certificate. */
  readonly certPem: string;
  /** sha256 of the certificate DER, lowercase hex. */
  readonly fingerprint: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** A fresh key and a self-signed certificate naming `commonName`, valid for `days` days. */
export async function generateTlsIdentity(commonName: string, options: { days?: number; dnsNames?: readonly string[]; ipAddresses?: readonly string[] } = {}): Promise<TlsIdentity> {
  if (!/^[A-Za-z0-9 ._:-]{1,64}$/.test(commonName)) throw new Error(`certificate name must be 1-64 letters, digits, space or ._:- (got "${commonName.slice(0, 80)}")`);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (options.days ?? 3650) * 86_400_000),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const certPem = cert.toString('pem') + '\n';
  return { keyPem: pem('PRIVATE KEY', pkcs8), certPem, fingerprint: certificateFingerprint(certPem) };
}

/** sha256 of a certificate's DER bytes (PEM or DER input), lowercase hex without colons. */
export function certificateFingerprint(cert: string | Uint8Array): string {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : new X509Certificate(Buffer.from(cert)).raw;
  return createHash('sha256').update(der).digest('hex');
}

/** The fingerprint as Node prints it (`AA:BB:…`) or as we write it, normalised to lowercase hex; null if it is neither. */
export function normaliseFingerprint(text: string): string | null {
  const hex = text.trim().replace(/^sha256:/i, '').replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}
