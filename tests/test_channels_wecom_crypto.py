"""WeCom callback crypto against the published vectors (channels.md §1.6, acceptance 1-9, 12)."""

from __future__ import annotations

import base64
import hashlib
import struct
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.channels.wecom import crypto as crypto_mod
from siyu.channels.wecom.crypto import WXBizMsgCrypt, parse_xml, signature
from siyu.errors import CallbackRejected, ValidationError

A_TOKEN, A_KEY, A_ID = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
B_TOKEN, B_KEY, B_ID = (
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
A1_ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
A3_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
    "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/T"
    "ywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5"
    "t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
A3_PLAIN = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    "<FromUserName><![CDATA[messense]]></FromUserName>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<MsgId>4363689963896700987</MsgId>\n"
    "<AgentID>1</AgentID>\n"
    "</xml>"
)
A4_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
A4_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesE"
    "l5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsD"
    "f03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nT"
    "YjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
B2_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkY"
    "cD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka"
    "7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49H"
    "KYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)


def a(random: bytes = b"1234567890123456") -> WXBizMsgCrypt:
    return WXBizMsgCrypt(A_TOKEN, A_KEY, A_ID, random=lambda: random)


def test_url_verification_vectors() -> None:
    assert a().verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", A1_ECHO) == (
        "5927782489442352469"
    )
    b = WXBizMsgCrypt(B_TOKEN, B_KEY, B_ID)
    assert (
        b.verify_url(
            "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
            "1476416373",
            "47744683",
            "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
        )
        == "1288432023552776189"
    )


@pytest.mark.parametrize(
    ("sig", "ts", "nonce", "echo"),
    [
        ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", A1_ECHO),
        ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443781", "437374425", A1_ECHO),
        ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", "x" + A1_ECHO),
        ("", "1411443780", "437374425", A1_ECHO),
    ],
)
def test_url_verification_with_altered_input_is_refused_before_decrypting(
    sig: str, ts: str, nonce: str, echo: str
) -> None:
    crypto = a()
    with mock.patch.object(crypto, "decrypt") as decrypt, pytest.raises(CallbackRejected) as err:
        crypto.verify_url(sig, ts, nonce, echo)
    assert err.value.code == -40001
    decrypt.assert_not_called()
    assert signature(A_TOKEN, "1411443780", "437374424", A1_ECHO) == "f89767f6fd40774771fe6c17908dc7ec82313f9a"
    with pytest.raises(CallbackRejected):
        WXBizMsgCrypt("654321", A_KEY, A_ID).verify_url(
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", A1_ECHO
        )


def test_decrypt_a3_and_b2() -> None:
    body = f"<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><Encrypt><![CDATA[{A3_ENCRYPT}]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>"  # noqa: E501
    plain = a().decrypt_message("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", body)
    assert plain == A3_PLAIN
    assert (
        hashlib.sha256(plain.encode()).hexdigest() == "34c99671cfe71447c7e7f8b6d8d581d5960b956ddcb8ce6a603f546fd6172a97"
    )
    fields = parse_xml(plain)
    assert fields["Content"] == "test" and fields["FromUserName"] == "messense"
    b_body = (
        f"<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[{B2_ENCRYPT}]]>"
        "</Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
    )
    b_plain = WXBizMsgCrypt(B_TOKEN, B_KEY, B_ID).decrypt_message(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", b_body.encode()
    )
    assert parse_xml(b_plain)["Content"] == "你好"
    assert len(b_plain.encode()) == 228


def test_encrypt_a4_reply_exactly() -> None:
    assert a().encrypt(A4_REPLY) == A4_ENCRYPT
    envelope = a().encrypt_message(A4_REPLY, "461056294", "1411525903")
    assert envelope == (
        f"<xml>\n<Encrypt><![CDATA[{A4_ENCRYPT}]]></Encrypt>\n"
        "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\n"
        "<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>"
    )


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=1400).filter(lambda t: len(t.encode()) <= 4096), st.binary(min_size=16, max_size=16))
def test_round_trip(text: str, prefix: bytes) -> None:
    crypto = a(prefix)
    assert crypto.decrypt(crypto.encrypt(text)) == text


@pytest.mark.parametrize("size", [32 - 20 - len(A_ID) + 32 * k for k in range(1, 4)])
def test_aligned_buffer_gets_a_full_padding_block(size: int) -> None:
    crypto = a()
    text = "x" * size
    raw = base64.b64decode(crypto.encrypt(text))
    assert (16 + 4 + size + len(A_ID)) % 32 == 0
    assert len(raw) == 16 + 4 + size + len(A_ID) + 32
    assert crypto.decrypt(crypto.encrypt(text)) == text


def test_wrong_receiveid() -> None:
    other = WXBizMsgCrypt(A_TOKEN, A_KEY, "ww_other")
    with pytest.raises(CallbackRejected) as err:
        other.decrypt(a().encrypt("hello"))
    assert err.value.code == -40005


def _raw_encrypt(plain: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(A_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


@pytest.mark.parametrize("pad_byte", [0, 33, 200])
def test_bad_padding_is_an_error_not_empty_plaintext(pad_byte: int) -> None:
    body = b"1234567890123456" + struct.pack(">I", 5) + b"hello" + A_ID.encode()
    body += b"\x00" * (64 - len(body) - 1) + bytes([pad_byte])
    encrypt = _raw_encrypt(body)
    sig = signature(A_TOKEN, "1", "2", encrypt)
    with pytest.raises(CallbackRejected) as err:
        a().decrypt_message(sig, "1", "2", f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    assert err.value.code == -40008


def test_inconsistent_padding_and_oversize_msg_len() -> None:
    body = b"1234567890123456" + struct.pack(">I", 5) + b"hello" + A_ID.encode()
    pad = 64 - len(body)
    bad = body + b"\x01" * (pad - 1) + bytes([pad])
    with pytest.raises(CallbackRejected) as err:
        a().decrypt(_raw_encrypt(bad))
    assert err.value.code == -40008
    huge = b"1234567890123456" + struct.pack(">I", 10_000) + b"hello" + A_ID.encode()
    huge += bytes([64 - len(huge)]) * (64 - len(huge))
    with pytest.raises(CallbackRejected) as err:
        a().decrypt(_raw_encrypt(huge))
    assert err.value.code == -40008


def test_tampered_ciphertext_fails_the_signature() -> None:
    encrypt = a().encrypt("hello")
    sig = signature(A_TOKEN, "1", "2", encrypt)
    raw = bytearray(base64.b64decode(encrypt))
    raw[5] ^= 1
    tampered = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(CallbackRejected) as err:
        a().decrypt_message(sig, "1", "2", f"<xml><Encrypt><![CDATA[{tampered}]]></Encrypt></xml>")
    assert err.value.code == -40001


@pytest.mark.parametrize("key", ["short", A_KEY + "A", A_KEY[:-1] + "!", "=" * 43])
def test_bad_encoding_aes_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValidationError, match="-40004"):
        WXBizMsgCrypt(A_TOKEN, key, A_ID)


def test_signature_comparison_is_constant_time() -> None:
    with mock.patch.object(crypto_mod.hmac, "compare_digest", wraps=crypto_mod.hmac.compare_digest) as cmp:
        a().verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", A1_ECHO)
    assert cmp.called


@pytest.mark.parametrize(
    "xml",
    [
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',  # noqa: E501
        '<!DOCTYPE xml SYSTEM "http://example.com/x.dtd"><xml><Encrypt>x</Encrypt></xml>',
        "<xml><Encrypt>unclosed",
    ],
)
def test_dangerous_or_malformed_xml_is_refused(xml: str) -> None:
    with pytest.raises(CallbackRejected) as err:
        parse_xml(xml)
    assert err.value.code == -40002


def test_repr_hides_secrets() -> None:
    assert A_KEY not in repr(a()) and A_TOKEN not in repr(a())
