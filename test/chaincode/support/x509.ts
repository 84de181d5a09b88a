/**
 * Just enough X.509 to mint Fabric-style client identities in tests: ECDSA P-256 certificates
 * (v3, ecdsa-with-SHA256) with a subject DN such as /C=US/O=org1/OU=client/CN=user7, issued by a
 * CA key. The in-memory stand-in uses them so that fabric-shim's real ClientIdentity parses every
 * caller's certificate; the real-network test can mint identities from an org CA's key with them.
 * Node's crypto signs and exports keys; the DER here is assembled by hand (no X.509 library).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";

/* ------------------------------------------------------------------ DER */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const p = (n: number): string => String(n).padStart(2, "0");
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, "ascii"));
}

const ATTRIBUTE_OIDS: Record<string, string> = { C: "2.5.4.6", ST: "2.5.4.8", L: "2.5.4.7", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3" };

/** A DN as ordered [shortName, value] pairs, e.g. [["C","US"],["O","org1"],["OU","client"],["CN","user1"]]. */
export type DistinguishedName = readonly (readonly [keyof typeof ATTRIBUTE_OIDS | string, string])[];

/** DER of an X.501 Name. C is a PrintableString, everything else UTF8String. */
export function encodeName(dn: DistinguishedName): Buffer {
  return seq(
    ...dn.map(([k, v]) => {
      const o = ATTRIBUTE_OIDS[k];
      if (!o) throw new Error(`unsupported DN attribute ${k}`);
      return set(seq(oid(o), tlv(k === "C" ? 0x13 : 0x0c, Buffer.from(v, "utf8"))));
    }),
  );
}

/** Reads one TLV at `offset`: its tag, where its content starts and ends. */
function readTlv(der: Buffer, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len };
}

/** The DER bytes of a certificate's subject Name: what a certificate it issues must carry as issuer. */
export function subjectOf(certPem: string): Buffer {
  const der = pemToDer(certPem);
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  let at = tbs.start;
  const fields: { start: number; end: number; tag: number; at: number }[] = [];
  while (at < tbs.end && fields.length < 6) {
    const f = readTlv(der, at);
    fields.push({ ...f, at });
    at = f.end;
  }
  // [0] version, serial, signature algorithm, issuer, validity, subject
  const offset = fields[0]?.tag === 0xa0 ? 0 : -1;
  const subject = fields[5 + offset];
  if (!subject) throw new Error("certificate has no subject");
  return der.subarray(subject.at, subject.end);
}

export function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  return Buffer.from(body, "base64");
}

function derToPem(der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/* ---------------------------------------------------------- certificates */

const ECDSA_WITH_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

export interface IssueOptions {
  subject: DistinguishedName;
  /** The issuer Name: a DN, or the raw DER subject of the CA certificate (see subjectOf). */
  issuer: DistinguishedName | Buffer;
  /** The certified public key. */
  publicKey: KeyObject;
  /** The CA's private key (the subject's own key for a self-signed certificate). */
  issuerKey: KeyObject;
  /** A CA certificate gets basicConstraints cA=true and keyUsage keyCertSign. */
  ca?: boolean;
  days?: number;
}

/** Issues an X.509 v3 certificate (PEM) signed with ecdsa-with-SHA256. */
export function issueCertificate(o: IssueOptions): string {
  const now = Date.now();
  const notBefore = new Date(now - 60 * 60 * 1000);
  const notAfter = new Date(now + (o.days ?? 365) * 24 * 60 * 60 * 1000);
  const spki = o.publicKey.export({ type: "spki", format: "der" });
  const extensions = o.ca
    ? tlv(
        0xa3,
        seq(
          seq(oid("2.5.29.19"), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(tlv(0x01, Buffer.from([0xff]))))),
          seq(oid("2.5.29.15"), tlv(0x01, Buffer.from([0xff])), tlv(0x04, tlv(0x03, Buffer.from([0x01, 0x06])))),
        ),
      )
    : tlv(0xa3, seq(seq(oid("2.5.29.19"), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq()))));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    ECDSA_WITH_SHA256,
    Buffer.isBuffer(o.issuer) ? o.issuer : encodeName(o.issuer),
    seq(utcTime(notBefore), utcTime(notAfter)),
    encodeName(o.subject),
    spki,
    extensions,
  );
  const signature = sign("sha256", tbs, o.issuerKey);
  return derToPem(seq(tbs, ECDSA_WITH_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))));
}

/* ------------------------------------------------------------ identities */

/** A Fabric client identity: MSP id, certificate and private key (PEM). */
export interface TestIdentity {
  mspId: string;
  certificate: string;
  privateKey: string;
}

/** A certificate authority for one test MSP. */
export class TestCa {
  private serial = 0;
  readonly certificate: string;
  private readonly key: KeyObject;
  private readonly subjectDer: Buffer;

  /** A fresh self-signed CA, or an existing one from its certificate and private key (PEM). */
  constructor(
    readonly mspId: string,
    existing?: { certificate: string; privateKey: string },
    private readonly org = mspId.replace(/MSP$/, "").toLowerCase(),
  ) {
    if (existing) {
      this.certificate = existing.certificate;
      this.key = createPrivateKey(existing.privateKey);
    } else {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      const name: DistinguishedName = [["C", "US"], ["O", `${this.org}.example.com`], ["CN", `ca.${this.org}.example.com`]];
      this.certificate = issueCertificate({ subject: name, issuer: name, publicKey, issuerKey: privateKey, ca: true, days: 3650 });
      this.key = privateKey;
    }
    this.subjectDer = subjectOf(this.certificate);
  }

  /** A new client identity (OU=client, as Fabric's NodeOUs expect) with a fresh P-256 key. */
  newIdentity(name = `user${++this.serial}-${randomBytes(4).toString("hex")}`): TestIdentity {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const certificate = issueCertificate({
      subject: [["C", "US"], ["O", `${this.org}.example.com`], ["OU", "client"], ["CN", name]],
      issuer: this.subjectDer,
      publicKey: createPublicKey(publicKey.export({ type: "spki", format: "pem" })),
      issuerKey: this.key,
    });
    return { mspId: this.mspId, certificate, privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
  }
}
