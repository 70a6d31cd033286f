import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { SgdMomentum } from '../../src/training/optimizer';

describe('SGD with momentum and weight decay', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('matches torch.optim.SGD: decay added to the gradient once, then momentum', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const sgd = new SgdMomentum(0.9, 0.1);
    const grad = () => ({ [w.name]: tf.tensor1d([0.5, 0.5]) });
    sgd.step([{ variables: [w], lr: 0.1 }], grad());
    // g = [0.5,0.5] + 0.1·[1,−2] = [0.6, 0.3]; buf = g; w = [1−0.06, −2−0.03]
    const first = Array.from(w.dataSync());
    [0.94, -2.03].forEach((e, i) => assert.ok(Math.abs(first[i] - e) < 1e-6, `${first[i]} vs ${e}`));
    sgd.step([{ variables: [w], lr: 0.1 }], grad());
    // g = [0.5+0.094, 0.5−0.203] = [0.594, 0.297]; buf = 0.9·[0.6,0.3] + g = [1.134, 0.567]
    const second = Array.from(w.dataSync());
    [0.94 - 0.1134, -2.03 - 0.0567].forEach((e, i) => assert.ok(Math.abs(second[i] - e) < 1e-6, `${second[i]} vs ${e}`));
    sgd.dispose();
  });

  it('uses each group\'s own lr', () => {
    const a = tf.variable(tf.scalar(1));
    const b = tf.variable(tf.scalar(1));
    const sgd = new SgdMomentum(0, 0);
    sgd.step([{ variables: [a], lr: 0.1 }, { variables: [b], lr: 0.5 }], { [a.name]: tf.scalar(1), [b.name]: tf.scalar(1) });
    assert.ok(Math.abs(a.dataSync()[0] - 0.9) < 1e-7);
    assert.ok(Math.abs(b.dataSync()[0] - 0.5) < 1e-7);
    sgd.dispose();
  });
});
