// The gallery a person can judge, its pure parts: how many neighbours share the query's class
// (none said for unlabelled data or a query of mixed classes), the per-query relative scale, the
// class/split filter, the words above the thumbnails; and the protocol's checks of the new fields
// and messages (a query of several images, filters, the augmentation preview), old messages still valid.
import * as assert from 'assert';
import { agreementText, classAgreement, galleryStatus, relativeScale } from '../../media/src/gallery';
import { rgbaOf } from '../../media/src/augmentationPreview';
import {
  matchesFilter, MAX_QUERY_IMAGES, NO_FILTER, parseFromWebview, parseToWebview, webviewMessage, WebviewProtocolError,
  type GalleryImage, type GalleryMessage,
} from '../../src/webview/protocol';

const image = (path: string, label: string | null, score: number | null, split: 'train' | 'test' | null = 'train'): GalleryImage =>
  ({ path, src: '', label, score, split });

function gallery(query: GalleryImage, neighbours: GalleryImage[], patch: Partial<GalleryMessage> = {}): GalleryMessage {
  return webviewMessage({ type: 'gallery', query, neighbours, checkpointStep: 40, ...patch });
}

describe('judged gallery', () => {
  const cats = ['cat/1.png', 'cat/2.png', 'cat/3.png'].map((p, i) => image(p, 'cat', 0.99 - i / 100));
  const dogs = ['dog/1.png', 'dog/2.png'].map((p, i) => image(p, 'dog', 0.95 - i / 100, 'test'));

  it('counts the neighbours that share the query\'s class', () => {
    const message = gallery(image('cat/0.png', 'cat', null), [cats[0], dogs[0], cats[1], dogs[1], cats[2]]);
    assert.deepStrictEqual(classAgreement(message), { label: 'cat', same: 3, of: 5 });
    assert.strictEqual(agreementText(classAgreement(message)!), "3 of 5 share the query's class (cat)");
    assert.deepStrictEqual(classAgreement(gallery(image('dog/0.png', 'dog', null), cats)), { label: 'dog', same: 0, of: 3 });
  });

  it('says nothing about classes for unlabelled data or a query of mixed classes', () => {
    const unlabelled = [image('a.png', null, 0.9), image('b.png', null, 0.8)];
    assert.strictEqual(classAgreement(gallery(image('q.png', null, null), unlabelled)), null);
    const mixed = gallery(image('cat/0.png', 'cat', null), cats, { queries: [image('cat/0.png', 'cat', null), image('dog/0.png', 'dog', null)] });
    assert.strictEqual(classAgreement(mixed), null);
    assert.match(galleryStatus(mixed), /mean of 2 selected images.*different classes/);
    const sameClass = gallery(image('cat/0.png', 'cat', null), [cats[0], dogs[0]], { queries: [image('cat/0.png', 'cat', null), image('cat/9.png', 'cat', null)] });
    assert.deepStrictEqual(classAgreement(sameClass), { label: 'cat', same: 1, of: 2 });
  });

  it('places each score between the lowest and highest shown', () => {
    // Early in training every score crowds above 0.9: the scale spreads them out.
    assert.deepStrictEqual(relativeScale([0.98, 0.96, 0.94]).map((x) => Number(x.toFixed(6))), [1, 0.5, 0]);
    assert.deepStrictEqual(relativeScale([0.5, 0.5]), [1, 1]);
    assert.deepStrictEqual(relativeScale([]), []);
  });

  it('filters neighbours by class and by split', () => {
    const all = [...cats, ...dogs];
    assert.deepStrictEqual(all.filter((n) => matchesFilter(n, { label: 'dog', split: null })).map((n) => n.path), ['dog/1.png', 'dog/2.png']);
    assert.deepStrictEqual(all.filter((n) => matchesFilter(n, { label: null, split: 'train' })).map((n) => n.path), cats.map((n) => n.path));
    assert.deepStrictEqual(all.filter((n) => matchesFilter(n, { label: 'cat', split: 'test' })), []);
    assert.strictEqual(all.filter((n) => matchesFilter(n, NO_FILTER)).length, 5);
    // An image whose split is unknown is not in any chosen split.
    assert.strictEqual(matchesFilter(image('x.png', 'cat', 0.5, null), { label: null, split: 'train' }), false);
  });

  it('words a filtered search with how far it looked', () => {
    const message = gallery(image('cat/0.png', 'cat', null), dogs, { filter: { label: 'dog', split: 'test' }, searched: 240 });
    assert.strictEqual(galleryStatus(message), '2 nearest neighbours of cat/0.png in class dog and the test split (among the 240 nearest) (checkpoint of step 40)');
  });
});

describe('webview protocol: judged gallery and augmentation preview', () => {
  it('accepts queries of several images with a filter, and refuses too many or none', () => {
    const paths = parseFromWebview(webviewMessage({ type: 'query', source: 'paths', paths: ['cat/1.png', 'dog/1.png'], filter: { label: 'cat', split: null } }));
    assert.deepStrictEqual(paths.type === 'query' && paths.source === 'paths' && paths.paths, ['cat/1.png', 'dog/1.png']);
    assert.throws(() => parseFromWebview(webviewMessage({ type: 'query', source: 'paths', paths: [] })), WebviewProtocolError);
    const many = Array.from({ length: MAX_QUERY_IMAGES + 1 }, (_, i) => `${i}.png`);
    assert.throws(() => parseFromWebview(webviewMessage({ type: 'query', source: 'paths', paths: many })), WebviewProtocolError);
    assert.throws(() => parseFromWebview({ ...webviewMessage({ type: 'query', source: 'random' }), filter: { label: null, split: 'validation' } }), WebviewProtocolError);
    // Older panels' messages still pass.
    assert.strictEqual(parseFromWebview(webviewMessage({ type: 'query', source: 'path', path: 'cat/1.png' })).type, 'query');
    assert.strictEqual(parseFromWebview(webviewMessage({ type: 'galleryRendered', query: 'q.png', images: 3, loaded: 3, failed: 0 })).type, 'galleryRendered');
  });

  it('accepts gallery messages with and without the new fields', () => {
    const old = { v: 1, type: 'gallery', query: { path: 'q.png', src: '', label: null, score: null }, neighbours: [], checkpointStep: null };
    assert.strictEqual(parseToWebview(old).type, 'gallery');
    const judged = gallery(image('cat/0.png', 'cat', null), [...[image('cat/1.png', 'cat', 0.9)]], {
      queries: [image('cat/0.png', 'cat', null), image('cat/5.png', 'cat', null)], filter: { label: 'cat', split: 'train' }, searched: 240,
      classes: ['cat', 'dog'], splits: ['test', 'train'],
    });
    assert.deepStrictEqual(parseToWebview(judged), judged);
  });

  it('checks the preview\'s views and decodes them to RGBA', () => {
    const rgb = Buffer.from([255, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const message = webviewMessage({
      type: 'augmentationPreview', size: 2, settings: 'tiny preset', notes: [],
      images: [{ path: 'cat/1.png', label: 'cat', pairs: [{ epoch: 0, batch: 3, slot: 5, view1: rgb.toString('base64'), view2: rgb.toString('base64') }] }],
    });
    assert.deepStrictEqual(parseToWebview(message), message);
    assert.throws(() => parseToWebview({ ...message, size: 0 }), WebviewProtocolError);
    assert.deepStrictEqual([...rgbaOf(rgb.toString('base64'), 2)!], [255, 0, 10, 255, 1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255]);
    assert.strictEqual(rgbaOf(rgb.toString('base64'), 3), null);
    assert.strictEqual(parseFromWebview(webviewMessage({ type: 'augmentationPreviewRequest', epoch: 3 })).type, 'augmentationPreviewRequest');
  });
});
