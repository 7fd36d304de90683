"""A show's OCIO config is pinned: a versioned name on the show, which neither $OCIO nor a library update moves."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from generation.engine import colour
from portal.colour import show_colour
from portal.models import Show


@pytest.mark.django_db
def test_a_new_show_gets_the_versioned_default_config(settings):
    settings.PT_OCIO_CONFIG = colour.DEFAULT_CONFIG
    show = Show.objects.create(code="new", name="New")
    assert show.ocio_config == colour.DEFAULT_CONFIG and "latest" not in show.ocio_config
    assert show_colour(show).config == show.ocio_config
    show.full_clean()


@pytest.mark.django_db
def test_a_latest_ocio_environment_is_pinned_to_what_it_means_today(settings):
    settings.PT_OCIO_CONFIG = "ocio://studio-config-latest"
    show = Show.objects.create(code="new", name="New")
    assert colour.is_pinned(show.ocio_config) and show.ocio_config != "ocio://studio-config-latest"
    assert colour.load_config(show.ocio_config).getCacheID() == colour.load_config(
        "ocio://studio-config-latest").getCacheID()


@pytest.mark.django_db
def test_a_show_refuses_an_unpinned_config_and_names_foreign_to_its_config(show):
    show.ocio_config = "ocio://cg-config-latest"
    with pytest.raises(ValidationError, match="changes with the OCIO library; name a versioned config, e.g. "
                                              "ocio://cg-config-v"):
        show.full_clean()
    show.ocio_config = colour.DEFAULT_CONFIG
    show.working_space = "LogC9"
    with pytest.raises(ValidationError, match="unknown colour space 'LogC9'"):
        show.full_clean()
    show.working_space, show.view = "ACEScg", "ACES 2.0 - SDR 100 nits (Rec.709)"  # a view of another config
    with pytest.raises(ValidationError, match="unknown view 'ACES 2.0 - SDR 100 nits"):
        show.full_clean()
    show.view = "ACES 1.0 - SDR Video"
    show.full_clean()


@pytest.mark.django_db
def test_the_migration_pins_shows_that_had_no_config_to_the_one_they_used(show, monkeypatch):
    migration = importlib.import_module("portal.migrations.0002_pinned_colour")
    Show.objects.filter(pk=show.pk).update(ocio_config="")
    other = Show.objects.create(code="oth", name="Other", ocio_config="ocio://cg-config-latest")
    kept = Show.objects.create(code="kept", name="Kept", ocio_config=colour.DEFAULT_CONFIG)
    monkeypatch.delenv("OCIO", raising=False)
    migration.pin_configs(apps, None)
    show.refresh_from_db(), other.refresh_from_db(), kept.refresh_from_db()
    assert show.ocio_config == colour.pinned_config_name("ocio://studio-config-latest")  # what blank meant
    assert other.ocio_config == colour.pinned_config_name("ocio://cg-config-latest")
    assert kept.ocio_config == colour.DEFAULT_CONFIG
