import { Type, type Static } from "@sinclair/typebox";
import { CATEGORY_NAMES, PURPOSES } from "../core/domain.js";

/** TypeBox schemas: the single source of request/response types and of the OpenAPI document. */

export const AddressT = Type.String({ pattern: "^0x[0-9a-fA-F]{40}$", description: "EVM address (ledger account)" });
export const Bytes32T = Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" });
export const HexSigT = Type.String({ pattern: "^0x[0-9a-fA-F]{130}$", description: "65-byte ECDSA signature (EIP-712)" });
export const UIntT = (max: number) => Type.Integer({ minimum: 0, maximum: max });
export const PurposeT = Type.Union(PURPOSES.map((p) => Type.Literal(p.key)), { description: "W3C DPV-aligned purpose" });
export const CategoryT = Type.Union(CATEGORY_NAMES.map((c) => Type.Literal(c)));
export const CategoriesT = Type.Array(CategoryT, { minItems: 1, maxItems: CATEGORY_NAMES.length, uniqueItems: true });

export const ErrorT = Type.Object({ code: Type.String(), message: Type.String() }, { $id: "Error" });

export const ConsentGrantMessageT = Type.Object(
  {
    subject: AddressT,
    partner: AddressT,
    purpose: UIntT(255),
    categories: UIntT(65535),
    expiresAt: UIntT(2 ** 40 - 1),
    receiptHash: Bytes32T,
    nonce: UIntT(2 ** 32 - 1),
    deadline: UIntT(2 ** 53 - 1),
  },
  { additionalProperties: false },
);

export const ConsentRevokeMessageT = Type.Object(
  { subject: AddressT, partner: AddressT, purpose: UIntT(255), nonce: UIntT(2 ** 32 - 1), deadline: UIntT(2 ** 53 - 1) },
  { additionalProperties: false },
);

export const ConsentRecordT = Type.Object(
  {
    schemaVersion: Type.Literal("custodia.consent/1"),
    recordId: Type.String({ minLength: 1, maxLength: 128 }),
    piiPrincipalId: Type.String({ minLength: 1, maxLength: 512 }),
    piiControllers: Type.Array(Type.Object({ id: Type.String({ maxLength: 512 }), name: Type.Optional(Type.String({ maxLength: 256 })) }), { maxItems: 16 }),
    recipients: Type.Array(Type.Object({ id: Type.String({ maxLength: 512 }), name: Type.Optional(Type.String({ maxLength: 256 })) }), { minItems: 1, maxItems: 16 }),
    purpose: Type.Object({ id: PurposeT, dpv: Type.String({ maxLength: 256 }), description: Type.String({ maxLength: 1024 }) }),
    piiCategories: CategoriesT,
    noticeHash: Bytes32T,
    expiresAt: Type.Union([Type.String({ maxLength: 40 }), Type.Null()]),
    jurisdiction: Type.String({ maxLength: 64 }),
    legalBasis: Type.Literal("consent"),
    withdrawalMethod: Type.String({ maxLength: 512 }),
    consentType: Type.Literal("explicit"),
    events: Type.Array(Type.Object({ type: Type.Union([Type.Literal("given"), Type.Literal("withdrawn")]), at: Type.String({ maxLength: 40 }) }), { maxItems: 64 }),
  },
  { additionalProperties: false, description: "ISO/IEC TS 27560 consent record" },
);

export const ConsentSubmissionT = Type.Union([
  Type.Object({ action: Type.Literal("grant"), message: ConsentGrantMessageT, signature: HexSigT, record: ConsentRecordT }, { additionalProperties: false }),
  Type.Object({ action: Type.Literal("revoke"), message: ConsentRevokeMessageT, signature: HexSigT }, { additionalProperties: false }),
]);
export type ConsentSubmission = Static<typeof ConsentSubmissionT>;

export const DataRequestMessageT = Type.Object(
  { subject: AddressT, commitment: Bytes32T, nonce: Type.String({ pattern: "^[0-9]{1,78}$" }), deadline: UIntT(2 ** 53 - 1) },
  { additionalProperties: false },
);

export const SignedDataRequestT = Type.Object({ message: DataRequestMessageT, signature: HexSigT }, { additionalProperties: false });
export const ErasureBodyT = Type.Object({ message: Type.Optional(DataRequestMessageT), signature: Type.Optional(HexSigT) }, { additionalProperties: false });

export const ReceiptT = Type.Object({ log: Type.String(), logId: Bytes32T, index: Type.Integer(), leafHash: Type.String(), treeSize: Type.Integer() });

export const DataQueryT = Type.Object(
  {
    subjects: Type.Array(AddressT, { minItems: 1, maxItems: 1000 }),
    purpose: PurposeT,
    categories: CategoriesT,
  },
  { additionalProperties: false },
);
export type DataQuery = Static<typeof DataQueryT>;

export const DataResultT = Type.Object({
  subject: AddressT,
  decision: Type.Union([Type.Literal("allow"), Type.Literal("deny")]),
  reason: Type.String(),
  block: Type.Integer(),
  receipt: ReceiptT,
  data: Type.Optional(Type.Unknown()),
});

export const RangeQueryT = Type.Object({
  start: Type.Integer({ minimum: 0 }),
  end: Type.Integer({ minimum: 0, description: "exclusive" }),
});
export const CheckpointPageT = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0, description: "only checkpoints of a larger tree size (the `next` of the previous page)" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
});
export const InclusionQueryT = Type.Object({ index: Type.Integer({ minimum: 0 }), size: Type.Integer({ minimum: 1 }) });
export const ConsistencyQueryT = Type.Object({ from: Type.Integer({ minimum: 1 }), to: Type.Integer({ minimum: 1 }) });
export const LogParamT = Type.Object({ log: Type.Union([Type.Literal("access"), Type.Literal("decisions")]) });
export const SubjectParamT = Type.Object({ subject: AddressT });
export const SingleDataQueryT = Type.Object({ purpose: PurposeT, categories: Type.String({ pattern: "^[a-z,]{1,200}$", description: "comma-separated categories" }) });

export const SegmentationRequestT = Type.Object(
  { purpose: PurposeT, k: Type.Optional(Type.Integer({ minimum: 2, maximum: 12 })), seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })) },
  { additionalProperties: false },
);
