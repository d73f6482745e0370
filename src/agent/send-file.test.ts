import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { safeFileName } from './send-file.js';

describe('safeFileName: what the recipient sees is a plain name whose extension matches the bytes', () => {
  it('keeps ordinary names', () => {
    assert.equal(safeFileName('report.csv', 'text/plain'), 'report.csv');
    assert.equal(safeFileName('photo.JPG', 'image/jpeg'), 'photo.JPG');
    assert.equal(safeFileName('Quartalsbericht März.pdf', 'application/pdf'), 'Quartalsbericht März.pdf');
  });

  it('drops directories, leading dots and characters that hide the real extension', () => {
    assert.equal(safeFileName('../../etc/passwd', 'text/plain'), 'passwd.txt');
    assert.equal(safeFileName('C:\\Users\\x\\run.bat', 'text/plain'), 'run.bat.txt');
    assert.equal(safeFileName('.bashrc', 'text/plain'), 'bashrc.txt');
    // U+202E right-to-left override would show "invoice_fdp.exe" as "invoice_exe.pdf".
    assert.equal(safeFileName('invoice_\u202Efdp.exe', 'text/plain'), 'invoice_fdp.exe.txt');
    assert.equal(safeFileName('a\u0000b\nc.txt', 'text/plain'), 'abc.txt');
    assert.equal(safeFileName('...', 'text/plain'), 'file.txt');
  });

  it('an extension that lies about the bytes is replaced or extended', () => {
    assert.equal(safeFileName('page.html', 'text/plain'), 'page.html.txt');
    assert.equal(safeFileName('image.svg', 'text/plain'), 'image.svg.txt');
    assert.equal(safeFileName('cat.pdf', 'image/png'), 'cat.png');
    assert.equal(safeFileName('doc', 'application/pdf'), 'doc.pdf');
  });

  it('long names are cut', () => {
    assert.ok(safeFileName('x'.repeat(500) + '.txt', 'text/plain').length <= 104);
  });
});
