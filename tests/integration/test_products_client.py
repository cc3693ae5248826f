"""The sky products through the client library and `skydriver scan products`, against the real SkyDriver
(held launcher, real database, real products process). The result is PUT with the scan's own scoped system
token, as its scanner server does. The blocking client and the CLI run in a worker thread (the server runs
on the test's event loop)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from skydriver.app import SkyDriver
from skydriver_client import (
    AsyncClient,
    Client,
    ProductIndex,
    ProductsNotReady,
    ScanNotFound,
)
from skydriver_client._cli import main
from tests.integration.test_client import cli_argv, in_thread, user_token
from tests.integration.test_products_rest import (
    NAMES,
    final_result,
    new_scan,
    put_result,
    served_version,
    user,
)


def etag_of(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


async def test_client_and_cli_before_the_first_result(
    held_skydriver: SkyDriver, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sky = held_skydriver
    async with user(sky) as client:
        scan_id = await new_scan(client)
    async with AsyncClient(sky.settings.url, token=user_token(sky)) as sd:
        index = await sd.products(scan_id)
        assert index.state == "none" and index.version is None and index.products == []
        with pytest.raises(ScanNotFound, match="has no result yet"):
            await sd.product(scan_id, "stats.json")
        with pytest.raises(ProductsNotReady, match="has no result yet"):
            await sd.download_products(scan_id, tmp_path / "out")
    argv = cli_argv(sky, "scan", "products", scan_id, "--output-dir", str(tmp_path / "out"))
    assert await in_thread(lambda: main(argv)) == 3
    assert "no sky products yet: it has no result yet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


async def test_client_reads_and_downloads_the_products(
    held_skydriver: SkyDriver, tmp_path: Path
) -> None:
    sky = held_skydriver
    async with user(sky) as client:
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=True)
        served = await served_version(client, scan_id, 1)

    def blocking() -> tuple[ProductIndex, list[Path], bytes, dict[str, object]]:
        with Client(sky.settings.url, token=user_token(sky)) as sd:
            index = sd.products(scan_id)
            fits = sd.product(scan_id, "skymap.multiorder.fits")
            assert fits.content_type == "application/fits"
            assert fits.etag == etag_of(fits.data) == index.products[0].etag
            stats = sd.product(scan_id, "stats.json", ra=10.0, dec=-20.0, radius_deg=5.0)
            _, paths = sd.download_products(scan_id, tmp_path / "sync")
            return index, paths, fits.data, json.loads(stats.data)

    index, paths, fits, stats = await in_thread(blocking)
    assert index.version == 1 and index.is_final is True and index.state == "ready"
    assert [p.name for p in index.products] == NAMES
    assert [p.model_dump() for p in index.products] == served["products"]
    assert [p.name for p in paths] == NAMES
    for path, entry in zip(paths, index.products, strict=True):
        assert etag_of(path.read_bytes()) == entry.etag
    assert (tmp_path / "sync" / "skymap.multiorder.fits").read_bytes() == fits
    position = stats["position"]
    assert (position["ra_deg"], position["dec_deg"]) == (10.0, -20.0)
    assert position["cone"]["radius_deg"] == 5.0

    async with AsyncClient(sky.settings.url, token=user_token(sky)) as sd:
        assert await sd.products(scan_id) == index
        notice = await sd.product(scan_id, "notice.json")
        assert json.loads(notice.text())["alert_type"] == "initial"
        got, paths = await sd.download_products(scan_id, tmp_path / "async")
        assert got == index
        assert [p.read_bytes() for p in paths] == [
            (tmp_path / "sync" / name).read_bytes() for name in NAMES
        ]


async def test_cli_downloads_every_product_and_prints_the_index(
    held_skydriver: SkyDriver, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sky = held_skydriver
    async with user(sky) as client:
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=True)
        served = await served_version(client, scan_id, 1)

    out = tmp_path / "products"
    argv = cli_argv(sky, "scan", "products", scan_id, "--output-dir", str(out))
    assert await in_thread(lambda: main(argv)) == 0
    printed = capsys.readouterr().out
    assert f"scan {scan_id}: sky products of result version 1 (final)" in printed
    for entry in served["products"]:
        path = out / entry["name"]
        assert f"wrote {path} ({entry['size']} bytes)" in printed
        assert etag_of(path.read_bytes()) == entry["etag"]
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)

    argv = cli_argv(sky, "scan", "products", scan_id, "--output-dir", str(tmp_path / "j"), "--json")
    assert await in_thread(lambda: main(argv)) == 0
    index = json.loads(capsys.readouterr().out)
    assert index["version"] == 1 and index["products"] == served["products"]
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == sorted(NAMES)

    assert await in_thread(lambda: main(cli_argv(sky, "scan", "products", scan_id))) == 0
    listing = capsys.readouterr().out
    assert "result version 1 (final)" in listing
    assert all(name in listing for name in NAMES)


async def test_a_download_is_of_one_version_even_when_a_new_one_lands_meanwhile(
    held_skydriver: SkyDriver, tmp_path: Path
) -> None:
    """A new version replaces the products between the index and the downloads: the client notices
    (the ETags differ from the index's) and downloads the new version whole."""
    sky = held_skydriver
    async with user(sky) as client:
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=False)
        first = await served_version(client, scan_id, 1)

    replaced = False

    class ReplacingTransport(httpx.AsyncHTTPTransport):
        """The real transport; before the first product request, the next version is stored and
        served (the client has read the first version's index by then)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal replaced
            if request.url.path.endswith("/products/skymap.multiorder.fits") and not replaced:
                replaced = True
                await put_result(sky, scan_id, final_result(), is_final=True)
                async with user(sky) as client:
                    await served_version(client, scan_id, 2)
            return await super().handle_async_request(request)

    async with AsyncClient(
        sky.settings.url, token=user_token(sky), transport=ReplacingTransport()
    ) as sd:
        index, paths = await sd.download_products(scan_id, tmp_path / "out")
    assert replaced
    assert index.version == 2 and index.is_final is True
    assert [p.etag for p in index.products] != [p["etag"] for p in first["products"]]
    for path, entry in zip(paths, index.products, strict=True):
        assert etag_of(path.read_bytes()) == entry.etag
