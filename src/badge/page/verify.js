// The badge check a QR code opens. The token is in the URL's fragment (never sent to any
// server by the browser). The signature is checked here, on the phone, with WebCrypto
// Ed25519 against the registry's published keys; then the registry is asked for the
// accreditation's current state, which decides when it answers (a revoked badge still has
// a good signature). The verdict stays in <main data-verdict data-mode> for tests and tools.
'use strict';

(function () {
  const TITLES = {
    VALID: 'VALID',
    REVOKED: 'REVOKED',
    EXPIRED: 'EXPIRED',
    UNKNOWN: 'UNKNOWN',
    BAD_SIGNATURE: 'BAD SIGNATURE',
    MISSING: 'NO BADGE',
    UNCHECKED: 'NOT CHECKED',
  };
  const EXPLANATIONS = {
    VALID: 'The accreditation is in force and the badge is authentic.',
    REVOKED: 'The accreditation was revoked. Do not accept this badge.',
    EXPIRED: 'The badge has expired.',
    UNKNOWN: 'The registry holds no accreditation with this number.',
    BAD_SIGNATURE: 'Not authentic: this badge was altered or forged.',
    MISSING: 'This link holds no badge. Scan the QR code on the badge again.',
    UNCHECKED: 'The badge could not be checked: neither on this device nor with the registry.',
  };

  const byId = (id) => document.getElementById(id);

  function base64urlBytes(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) {
      throw new Error('not base64url');
    }
    const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes;
  }

  function base64urlJson(text) {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64urlBytes(text)));
  }

  function pemBytes(pem) {
    const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
    return base64urlBytes(body.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
  }

  // The token of the fragment: `#TOKEN`, perhaps percent-encoded by a scanner app.
  function tokenOfFragment() {
    let fragment = location.hash.replace(/^#/, '');
    try {
      fragment = decodeURIComponent(fragment);
    } catch (error) {
      // Left as it is: a garbled fragment fails the check below.
    }
    return fragment.trim();
  }

  // The keys embedded in the page; fetched again when a badge names another one.
  function embeddedKeys() {
    try {
      return JSON.parse(byId('badge-keys').textContent).keys || [];
    } catch (error) {
      return [];
    }
  }

  async function fetchedKeys() {
    try {
      const response = await fetch('/v1/badge-keys', { cache: 'no-store' });
      return response.ok ? (await response.json()).keys || [] : [];
    } catch (error) {
      return [];
    }
  }

  // What this device alone can say: 'VALID', 'EXPIRED' or 'BAD_SIGNATURE' with the claims,
  // or 'UNSUPPORTED' when it has no WebCrypto Ed25519 (old phone, page not over HTTPS).
  async function checkOffline(token) {
    const parts = token.split('.');
    if (parts.length !== 3) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    let header;
    let signature;
    try {
      header = base64urlJson(parts[0]);
      signature = base64urlBytes(parts[2]);
    } catch (error) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    if (header.alg !== 'EdDSA' || signature.length !== 64) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    if (!window.crypto || !crypto.subtle) {
      return { verdict: 'UNSUPPORTED' };
    }
    let key = embeddedKeys().find((k) => k.keyId === header.kid);
    if (!key) {
      key = (await fetchedKeys()).find((k) => k.keyId === header.kid);
    }
    if (!key) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    let publicKey;
    try {
      publicKey = await crypto.subtle.importKey(
        'spki', pemBytes(key.publicKeyPem), { name: 'Ed25519' }, false, ['verify']);
    } catch (error) {
      return { verdict: 'UNSUPPORTED' };
    }
    const signed = new TextEncoder().encode(parts[0] + '.' + parts[1]);
    let authentic = false;
    try {
      authentic = await crypto.subtle.verify('Ed25519', publicKey, signature, signed);
    } catch (error) {
      return { verdict: 'UNSUPPORTED' };
    }
    if (!authentic) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    let claims;
    try {
      claims = base64urlJson(parts[1]);
    } catch (error) {
      return { verdict: 'BAD_SIGNATURE' };
    }
    const expired = Date.now() >= claims.exp * 1000;
    return {
      verdict: expired ? 'EXPIRED' : 'VALID',
      facts: {
        name: [claims.g, claims.f].join(' ').trim(),
        organization: claims.o,
        citizenship: claims.c,
        number: claims.n,
        election: claims.e,
        expiry: new Date(claims.exp * 1000),
      },
    };
  }

  // The registry's answer, or null when it cannot be reached or does not answer a check.
  async function checkOnline(token) {
    try {
      const response = await fetch('/v1/verify?token=' + encodeURIComponent(token), {
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (!response.ok) {
        return { unreachable: response.status === 429 ? 'busy' : 'error' };
      }
      const check = await response.json();
      if (!TITLES[check.status]) {
        return { unreachable: 'error' };
      }
      const shows = check.status !== 'UNKNOWN' && check.status !== 'BAD_SIGNATURE';
      return {
        verdict: check.status,
        facts: shows ? {
          name: [check.givenName, check.familyName].filter(Boolean).join(' '),
          organization: check.organizationDisplayName,
          citizenship: check.citizenship,
          number: check.accreditationNumber,
          election: check.electionDisplayName || check.election,
          expiry: check.expireTime ? new Date(check.expireTime) : null,
        } : null,
      };
    } catch (error) {
      return { unreachable: 'network' };
    }
  }

  function show(verdict, mode, facts, modeText) {
    const main = byId('check');
    main.dataset.verdict = verdict;
    main.dataset.mode = mode;
    byId('verdict').textContent = TITLES[verdict];
    byId('explanation').textContent = EXPLANATIONS[verdict];
    byId('mode').textContent = modeText;
    const list = byId('facts');
    list.hidden = !facts;
    if (facts) {
      byId('name').textContent = facts.name || '';
      byId('organization').textContent = facts.organization || '';
      byId('citizenship').textContent = facts.citizenship || '';
      byId('number').textContent = facts.number || '';
      byId('election').textContent = facts.election || '';
      byId('expiry').textContent = facts.expiry
        ? facts.expiry.toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC')
        : '';
    }
  }

  async function run() {
    const token = tokenOfFragment();
    if (!token) {
      show('MISSING', 'none', null, '');
      return;
    }
    const [offline, online] = await Promise.all([checkOffline(token), checkOnline(token)]);
    const signatureNote = offline.verdict === 'UNSUPPORTED'
      ? 'The signature could not be checked on this device (no Ed25519 support here); '
      : 'Signature checked on this device; ';
    if (online.verdict) {
      show(online.verdict, 'online', online.facts,
        signatureNote + 'current state confirmed online by the registry.');
      return;
    }
    const reason = online.unreachable === 'busy'
      ? 'the registry refused: too many checks from this network, try again in a minute.'
      : 'the registry could not be reached, so a revocation would not show.';
    if (offline.verdict === 'UNSUPPORTED') {
      show('UNCHECKED', 'none', null, signatureNote + reason);
      return;
    }
    show(offline.verdict, 'offline', offline.facts,
      'OFFLINE ONLY. ' + signatureNote + reason);
  }

  run().catch(() => show('UNCHECKED', 'none', null, 'The check failed on this device.'));
  window.addEventListener('hashchange', () => {
    run().catch(() => show('UNCHECKED', 'none', null, 'The check failed on this device.'));
  });
}());
