/**
 * Node sessions compute int8 MatMul exactly. x86-64 CPUs without VNNI saturate ORT's u8·s8 kernel at int16
 * (two products of 255 · 127 already overflow); NODE_SESSION_OPTIONS must make ORT avoid that kernel. On CPUs
 * that never saturate the plain session agrees too, and the test says so.
 */
import * as ort from 'onnxruntime-node';
import { expect, it } from 'vitest';
import { DataType, encodeModel } from '../../src/fuser/onnx/protobuf';
import { NODE_SESSION_OPTIONS } from '../../src/util/ort-node-options';

const K = 64;
/** y = a · w with a = 255 and w = 127 everywhere: every pair of products exceeds int16. */
const MODEL = encodeModel({
  name: 'saturation_probe',
  nodes: [{ op: 'MatMulInteger', inputs: ['a', 'w'], outputs: ['y'] }],
  initializers: [{ name: 'w', dims: [K, 1], dataType: DataType.INT8, raw: new Uint8Array(new Int8Array(K).fill(127).buffer) }],
  inputs: [{ name: 'a', dims: [1, K], elemType: DataType.UINT8 }],
  outputs: [{ name: 'y', dims: [1, 1], elemType: DataType.INT32 }],
});

async function probe(options: ort.InferenceSession.SessionOptions): Promise<number> {
  const session = await ort.InferenceSession.create(MODEL, options);
  try {
    const { y } = await session.run({ a: new ort.Tensor('uint8', new Uint8Array(K).fill(255), [1, K]) });
    return Number(y.data[0]);
  } finally {
    await session.release();
  }
}

it('int8 MatMul with full-range weights is exact under NODE_SESSION_OPTIONS', async () => {
  const exact = 255 * 127 * K;
  const plain = await probe({});
  console.log(`[int8 probe] plain session ${plain}${plain === exact ? ' (exact: this CPU does not saturate)' : ' (saturated)'}`);
  expect(await probe(NODE_SESSION_OPTIONS as ort.InferenceSession.SessionOptions)).toBe(exact);
});
