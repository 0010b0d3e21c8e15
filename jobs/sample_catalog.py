"""The sample catalog behind `signals sample` and `make demo`: a synthetic snapshot with real media.

Why synthetic: the demo, the tests and the benchmarks need a catalog that exists offline, is the
same on every machine for a given seed, and whose media carry KNOWN answers — tempo, loudness,
dominant colours, planted duplicates, deliberately broken rows — so that the extractors that follow
are checked against ground truth instead of eyeballed.

What is written (`write_sample_catalog`):
- the snapshot, a Delta table with exactly `features.catalog.CATALOG_SCHEMA`;
- media under `media_dir`, referenced from the snapshot by **absolute local paths** (no `file://`
  scheme: soundfile, Pillow, PyAV and fsspec all open them as they are)::

      media_dir/audio/<type>-<number>.wav|flac|ogg   every track, episode, audiobook and chapter
      media_dir/artwork/<type>-<number>.png|jpg|webp every item
      media_dir/video/video-<number>.gif             every video (canvas loop, 10 frames/s, no audio)
      media_dir/ground_truth.parquet                 one row per item: what the media really hold

Audio clips are 6–8 s previews whatever the item's catalog `duration_ms` says; the ground truth's
`clip_duration_ms` is the clip's true length. Loudness ground truth is measured on the samples as a
decoder returns them (ITU-R BS.1770-4, `extractors.audio_dsp.integrated_loudness`), not merely
the target. Half of the English tracks, episodes and audiobooks state a genre in one sentence of
their description (`GENRE_SENTENCES`); the ground truth's `genre` is that label, for `text_tags`.

Determinism: every value of an item comes from counter-based random streams keyed by
(seed, content type, item number), so the same seed gives the same rows whatever the batch size,
and a batch can be produced without the ones before it (a 1M-item snapshot streams in batches).
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import soundfile as sf
from deltalake import write_deltalake
from PIL import Image

# The project's one BS.1770 meter; its tests hold it to pyloudnorm and to the standard's numbers.
from extractors.audio_dsp import integrated_loudness
from extractors.audio_dsp import k_weighting_coefficients as k_weighting_coefficients
from features.catalog import CATALOG_SCHEMA, CONTENT_TYPES

# --------------------------------------------------------------------------------------------
# Catalog shape
# --------------------------------------------------------------------------------------------

TRACK, EPISODE, AUDIOBOOK, CHAPTER, VIDEO = (
    CONTENT_TYPES.index(name) for name in ("track", "episode", "audiobook", "chapter", "video")
)
# Rows come in blocks of CYCLE; each block holds these many items of each type, in a seeded order.
CYCLE = 100
SHARES: dict[int, int] = {TRACK: 55, EPISODE: 25, AUDIOBOOK: 8, CHAPTER: 10, VIDEO: 2}
BOOKS_PER_CHAPTERED_BOOK = 3  # one audiobook in three has chapters, ~4 each

REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)  # `updated_at` counts back from here
UPDATED_SPREAD_DAYS = 240
DEFAULT_BATCH_ROWS = 65_536
GROUND_TRUTH_FILE = "ground_truth.parquet"

LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "sv")
LANGUAGE_WEIGHTS: tuple[float, ...] = (0.38, 0.16, 0.10, 0.10, 0.10, 0.07, 0.09)

# --------------------------------------------------------------------------------------------
# Words. Lists are picked from at random; pairs are (text before, text after) a slot.
# Title halves: English is adjective + noun, the others noun + a modifier that agrees with any noun.
# --------------------------------------------------------------------------------------------

# fmt: off
TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "title_a": ["Midnight", "Golden", "Quiet", "Electric", "Paper", "Silver", "Northern",
                    "Broken", "Velvet", "Summer", "Hollow", "Neon", "Distant", "Wild"],
        "title_b": ["Ferry", "Harbour", "Lights", "Garden", "Letters", "River", "Parade", "Signal",
                    "Highway", "Horses", "Rooms", "Weather", "Satellites", "Kingdom"],
        "first": ["Maya", "Daniel", "Grace", "Oliver", "Hannah", "Samuel", "Chloe", "Marcus",
                  "Ruth", "Leo"],
        "last": ["Bennett", "Okafor", "Hughes", "Patel", "Morgan", "Reyes", "Fletcher", "Kim",
                 "Sullivan", "Hart"],
        "moods": ["A slow-burning song about leaving home.", "Built for long drives after dark.",
                  "Recorded in a single take with the windows open.",
                  "Warm synths, a restless beat and a chorus that sticks.",
                  "An acoustic sketch that grew into a full band.",
                  "A love letter to the last train home."],
        "topics": ["How cities learn to breathe", "The hidden life of rivers",
                   "Why we forget our dreams", "What bees know about democracy",
                   "The economics of shade", "Inside the world's quietest room",
                   "How maps shape the way we think", "The science of a good night's sleep",
                   "When machines learn to listen", "The lost art of letter writing"],
        "roles": ["an urban planner", "a marine biologist", "a historian", "a neuroscientist",
                  "a jazz pianist", "an economist", "a novelist", "a software engineer"],
        "blurbs": ["We talk about trees, trains and the quiet economics of shade.",
                   "We look at the data and at the stories behind it.",
                   "Along the way we meet the people who made it happen.",
                   "It is a story about patience, luck and stubborn curiosity."],
        "outros": ["New episodes every Tuesday.", "Thanks for listening.",
                   "Subscribe so you never miss an episode."],
        "book_a": ["The Cartographer", "The Last Summer", "The Salt House", "The Winter Guest",
                   "The Silent Bell", "The Glass Orchard", "The Long Way Home",
                   "The Paper Lantern"],
        "book_b": ["of Lisbon", "in the North", "by the Sea", "of the Mountains", "of Galway",
                   "at the Border"],
        "book_blurbs": ["A sweeping story of family, memory and the sea.",
                        "Two strangers, one winter, and a secret neither can keep.",
                        "A tense, tender mystery set in a forgotten town.",
                        "An unforgettable portrait of a friendship that lasts fifty years."],
        "chapters": ["The Harbour at Dawn", "A Letter Arrives", "Crossing the River",
                     "The Night Market", "What the Old Man Said", "Snow on the Tracks",
                     "An Empty Room", "The Return"],
        "album": ("From the album ", "."),
        "produced": ("Written and produced by ", "."),
        "episode": ("Episode ", ": "),
        "conversation": ("A conversation with ", ", "),
        "novel": ("A novel by ", "."),
        "narrated": ("Narrated by ", "."),
        "chapter": ("Chapter ", ": "),
        "from_book": ("From ", "."),
        "loop": ("A short looping visual for ", "."),
    },
    "es": {
        "title_a": ["Luces", "Canción", "Baile", "Jardín", "Cartas", "Río", "Barco", "Sombras",
                    "Caballos", "Ventanas", "Fuego", "Ciudad"],
        "title_b": ["de medianoche", "del puerto", "sin nombre", "de verano", "en la lluvia",
                    "de papel", "del sur", "de cristal", "al amanecer", "de neón", "sin regreso",
                    "en la niebla"],
        "first": ["Lucía", "Mateo", "Carmen", "Javier", "Sofía", "Diego", "Valentina", "Pablo",
                  "Elena", "Andrés"],
        "last": ["García", "Martínez", "López", "Fernández", "Romero", "Navarro", "Torres",
                 "Vargas", "Molina", "Herrera"],
        "moods": ["Una canción lenta sobre dejar atrás la casa.", "Hecha para conducir de noche.",
                  "Grabada en una sola toma con las ventanas abiertas.",
                  "Sintetizadores cálidos y un estribillo que no se olvida.",
                  "Un boceto acústico que acabó siendo una canción de banda.",
                  "Una carta de amor al último tren de la noche."],
        "topics": ["Cómo aprenden a respirar las ciudades", "La vida secreta de los ríos",
                   "Por qué olvidamos los sueños", "Lo que las abejas saben de la democracia",
                   "La economía de la sombra", "Dentro de la habitación más silenciosa del mundo",
                   "Cómo los mapas cambian nuestra forma de pensar", "La ciencia de dormir bien",
                   "Cuando las máquinas aprenden a escuchar", "El arte perdido de escribir cartas"],
        "roles": ["urbanista", "economista", "novelista", "pianista de jazz", "periodista",
                  "paisajista", "especialista en sueño", "ecologista"],
        "blurbs": ["Hablamos de árboles, trenes y de la economía silenciosa de la sombra.",
                   "Miramos los datos y las historias que hay detrás.",
                   "Por el camino conocemos a las personas que lo hicieron posible.",
                   "Es una historia de paciencia, suerte y curiosidad."],
        "outros": ["Nuevos episodios cada martes.", "Gracias por escucharnos.",
                   "Suscríbete para no perderte ningún episodio."],
        "book_a": ["El cartógrafo", "El último verano", "La casa de sal", "El huésped de invierno",
                   "La campana silenciosa", "El jardín de cristal", "El largo camino",
                   "La linterna de papel"],
        "book_b": ["de Lisboa", "del norte", "junto al mar", "de las montañas", "de Valparaíso",
                   "de la frontera"],
        "book_blurbs": ["Una historia de familia, memoria y mar.",
                        "Dos desconocidos, un invierno y un secreto que ninguno puede guardar.",
                        "Un misterio tierno y tenso en un pueblo olvidado.",
                        "Un retrato inolvidable de una amistad de cincuenta años."],
        "chapters": ["El puerto al amanecer", "Llega una carta", "Cruzar el río",
                     "El mercado nocturno", "Lo que dijo el anciano", "Nieve en las vías",
                     "Una habitación vacía", "El regreso"],
        "album": ("Del álbum ", "."),
        "produced": ("Escrita y producida por ", "."),
        "episode": ("Episodio ", ": "),
        "conversation": ("Una conversación con ", ", "),
        "novel": ("Una novela de ", "."),
        "narrated": ("Narrada por ", "."),
        "chapter": ("Capítulo ", ": "),
        "from_book": ("Del libro «", "»."),
        "loop": ("Un breve bucle visual para «", "»."),
    },
    "fr": {
        "title_a": ["Lumières", "Chanson", "Jardin", "Lettres", "Rivière", "Bateau", "Ombres",
                    "Chevaux", "Fenêtres", "Danse", "Ville", "Feu"],
        "title_b": ["de minuit", "du port", "sans nom", "d'été", "sous la pluie", "de papier",
                    "du sud", "de verre", "à l'aube", "de néon", "sans retour", "dans la brume"],
        "first": ["Camille", "Louis", "Chloé", "Hugo", "Léa", "Julien", "Manon", "Antoine", "Inès",
                  "Mathieu"],
        "last": ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard",
                 "Fontaine", "Rousseau", "Mercier"],
        "moods": ["Une chanson lente sur le départ.", "Faite pour rouler la nuit.",
                  "Enregistrée en une seule prise, fenêtres ouvertes.",
                  "Des synthés chauds et un refrain qui reste en tête.",
                  "Une esquisse acoustique devenue chanson de groupe.",
                  "Une lettre d'amour au dernier train du soir."],
        "topics": ["Comment les villes apprennent à respirer", "La vie secrète des rivières",
                   "Pourquoi nous oublions nos rêves",
                   "Ce que les abeilles savent de la démocratie", "L'économie de l'ombre",
                   "Dans la pièce la plus silencieuse du monde",
                   "Comment les cartes façonnent notre pensée",
                   "La science d'une bonne nuit de sommeil",
                   "Quand les machines apprennent à écouter", "L'art perdu de la correspondance"],
        "roles": ["urbaniste", "économiste", "journaliste", "pianiste de jazz", "paysagiste",
                  "spécialiste du sommeil", "biologiste", "architecte"],
        "blurbs": ["On parle d'arbres, de trains et de l'économie discrète de l'ombre.",
                   "Nous regardons les chiffres et les histoires qui se cachent derrière.",
                   "En chemin, nous rencontrons celles et ceux qui l'ont rendu possible.",
                   "Une histoire de patience, de chance et de curiosité."],
        "outros": ["Nouvel épisode chaque mardi.", "Merci de nous écouter.",
                   "Abonnez-vous pour ne manquer aucun épisode."],
        "book_a": ["Le Cartographe", "Le Dernier Été", "La Maison de sel", "L'Invité d'hiver",
                   "La Cloche silencieuse", "Le Verger de verre", "Le Long Chemin",
                   "La Lanterne de papier"],
        "book_b": ["de Lisbonne", "du Nord", "au bord de la mer", "des montagnes", "de Marseille",
                   "de la frontière"],
        "book_blurbs": ["Une grande histoire de famille, de mémoire et de mer.",
                        "Deux inconnus, un hiver et un secret que personne ne sait garder.",
                        "Un mystère tendre et tendu dans une ville oubliée.",
                        "Le portrait inoubliable d'une amitié de cinquante ans."],
        "chapters": ["Le port à l'aube", "Une lettre arrive", "Traverser la rivière",
                     "Le marché de nuit", "Ce que disait le vieil homme",
                     "De la neige sur les rails", "Une chambre vide", "Le retour"],
        "album": ("Extrait de l'album ", "."),
        "produced": ("Écrit et produit par ", "."),
        "episode": ("Épisode ", " : "),
        "conversation": ("Une conversation avec ", ", "),
        "novel": ("Un roman de ", "."),
        "narrated": ("Lu par ", "."),
        "chapter": ("Chapitre ", " : "),
        "from_book": ("Extrait de « ", " »."),
        "loop": ("Une courte boucle visuelle pour « ", " »."),
    },
    "de": {
        "title_a": ["Lichter", "Lieder", "Gärten", "Briefe", "Schatten", "Pferde", "Fenster",
                    "Stimmen", "Wellen", "Straßen", "Träume", "Funken"],
        "title_b": ["um Mitternacht", "am Hafen", "ohne Namen", "im Sommer", "im Regen",
                    "aus Papier", "im Süden", "aus Glas", "im Morgengrauen", "aus Neon",
                    "ohne Wiederkehr", "im Nebel"],
        "first": ["Lena", "Jonas", "Mia", "Felix", "Clara", "Lukas", "Johanna", "Moritz", "Greta",
                  "Paul"],
        "last": ["Müller", "Schmidt", "Becker", "Hoffmann", "Wagner", "Schulz", "Keller", "Brandt",
                 "Vogel", "Krüger"],
        "moods": ["Ein langsames Lied über den Abschied von zu Hause.",
                  "Gemacht für lange Fahrten in der Nacht.",
                  "In einem einzigen Take bei offenem Fenster aufgenommen.",
                  "Warme Synthesizer, ein unruhiger Beat und ein Refrain, der bleibt.",
                  "Eine akustische Skizze, aus der ein Bandsong wurde.",
                  "Ein Liebesbrief an den letzten Zug nach Hause."],
        "topics": ["Wie Städte atmen lernen", "Das geheime Leben der Flüsse",
                   "Warum wir unsere Träume vergessen", "Was Bienen über Demokratie wissen",
                   "Die Ökonomie des Schattens", "Im leisesten Raum der Welt",
                   "Wie Landkarten unser Denken prägen", "Die Wissenschaft vom guten Schlaf",
                   "Wenn Maschinen zuhören lernen", "Die verlorene Kunst des Briefeschreibens"],
        "roles": ["aus der Stadtplanung", "aus der Meeresbiologie", "aus der Geschichtsforschung",
                  "aus der Hirnforschung", "aus der Jazzszene", "aus der Wirtschaft",
                  "aus der Literatur", "aus der Softwareentwicklung"],
        "blurbs": ["Wir sprechen über Bäume, Züge und die stille Ökonomie des Schattens.",
                   "Wir schauen auf die Daten und auf die Geschichten dahinter.",
                   "Unterwegs treffen wir die Menschen, die es möglich gemacht haben.",
                   "Eine Geschichte über Geduld, Glück und Neugier."],
        "outros": ["Jeden Dienstag eine neue Folge.", "Danke fürs Zuhören.",
                   "Abonniere den Podcast, damit du keine Folge verpasst."],
        "book_a": ["Der Kartograf", "Der letzte Sommer", "Das Salzhaus", "Der Wintergast",
                   "Die stille Glocke", "Der gläserne Garten", "Der lange Weg",
                   "Die Papierlaterne"],
        "book_b": ["von Lissabon", "im Norden", "am Meer", "in den Bergen", "von Hamburg",
                   "an der Grenze"],
        "book_blurbs": ["Eine große Geschichte über Familie, Erinnerung und das Meer.",
                        "Zwei Fremde, ein Winter und ein Geheimnis, das keiner bewahren kann.",
                        "Ein zarter, spannender Krimi in einer vergessenen Stadt.",
                        "Das unvergessliche Porträt einer Freundschaft über fünfzig Jahre."],
        "chapters": ["Der Hafen im Morgengrauen", "Ein Brief kommt an", "Über den Fluss",
                     "Der Nachtmarkt", "Was der alte Mann sagte", "Schnee auf den Gleisen",
                     "Ein leeres Zimmer", "Die Rückkehr"],
        "album": ("Aus dem Album „", "“."),
        "produced": ("Geschrieben und produziert von ", "."),
        "episode": ("Folge ", ": "),
        "conversation": ("Ein Gespräch mit ", " "),
        "novel": ("Ein Roman von ", "."),
        "narrated": ("Gelesen von ", "."),
        "chapter": ("Kapitel ", ": "),
        "from_book": ("Aus „", "“."),
        "loop": ("Eine kurze Animationsschleife zu „", "“."),
    },
    "pt": {
        "title_a": ["Luzes", "Canção", "Jardim", "Cartas", "Rio", "Barco", "Sombras", "Cavalos",
                    "Janelas", "Dança", "Cidade", "Fogo"],
        "title_b": ["da meia-noite", "do porto", "sem nome", "de verão", "na chuva", "de papel",
                    "do sul", "de vidro", "ao amanhecer", "de neon", "sem volta", "na neblina"],
        "first": ["Ana", "João", "Beatriz", "Pedro", "Mariana", "Rafael", "Larissa", "Gabriel",
                  "Helena", "Thiago"],
        "last": ["Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Almeida", "Ribeiro",
                 "Carvalho", "Rocha"],
        "moods": ["Uma canção lenta sobre sair de casa.", "Feita para dirigir de madrugada.",
                  "Gravada em um único take com as janelas abertas.",
                  "Sintetizadores quentes e um refrão que não sai da cabeça.",
                  "Um esboço acústico que virou música de banda.",
                  "Uma carta de amor ao último trem da noite."],
        "topics": ["Como as cidades aprendem a respirar", "A vida secreta dos rios",
                   "Por que esquecemos os sonhos", "O que as abelhas sabem sobre democracia",
                   "A economia da sombra", "Dentro da sala mais silenciosa do mundo",
                   "Como os mapas moldam o nosso pensamento", "A ciência de uma boa noite de sono",
                   "Quando as máquinas aprendem a ouvir", "A arte perdida de escrever cartas"],
        "roles": ["urbanista", "economista", "jornalista", "pianista de jazz", "paisagista",
                  "especialista em sono", "cientista", "ecologista"],
        "blurbs": ["Falamos de árvores, trens e da economia silenciosa da sombra.",
                   "Olhamos para os dados e para as histórias por trás deles.",
                   "No caminho, conhecemos as pessoas que tornaram isso possível.",
                   "Uma história de paciência, sorte e curiosidade."],
        "outros": ["Episódios novos toda terça-feira.", "Obrigado por ouvir.",
                   "Assine para não perder nenhum episódio."],
        "book_a": ["O Cartógrafo", "O Último Verão", "A Casa de Sal", "O Hóspede de Inverno",
                   "O Sino Silencioso", "O Pomar de Vidro", "O Longo Caminho",
                   "A Lanterna de Papel"],
        "book_b": ["de Lisboa", "do Norte", "à beira-mar", "das montanhas", "do Recife",
                   "da fronteira"],
        "book_blurbs": ["Uma grande história de família, memória e mar.",
                        "Dois desconhecidos, um inverno e um segredo que ninguém consegue guardar.",
                        "Um mistério terno e tenso numa cidade esquecida.",
                        "O retrato inesquecível de uma amizade de cinquenta anos."],
        "chapters": ["O porto ao amanhecer", "Chega uma carta", "Atravessando o rio",
                     "O mercado noturno", "O que o velho disse", "Neve nos trilhos",
                     "Um quarto vazio", "O regresso"],
        "album": ("Do álbum ", "."),
        "produced": ("Composta e produzida por ", "."),
        "episode": ("Episódio ", ": "),
        "conversation": ("Uma conversa com ", ", "),
        "novel": ("Um romance de ", "."),
        "narrated": ("Narrado por ", "."),
        "chapter": ("Capítulo ", ": "),
        "from_book": ("Do livro ", "."),
        "loop": ("Um breve loop visual para ", "."),
    },
    "it": {
        "title_a": ["Luci", "Canzone", "Giardino", "Lettere", "Fiume", "Barca", "Ombre", "Cavalli",
                    "Finestre", "Danza", "Città", "Fuoco"],
        "title_b": ["di mezzanotte", "del porto", "senza nome", "d'estate", "sotto la pioggia",
                    "di carta", "del sud", "di vetro", "all'alba", "al neon", "senza ritorno",
                    "nella nebbia"],
        "first": ["Giulia", "Marco", "Chiara", "Luca", "Francesca", "Matteo", "Sara", "Davide",
                  "Elisa", "Tommaso"],
        "last": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
                 "Marino", "Greco"],
        "moods": ["Una canzone lenta sul lasciare casa.", "Fatta per guidare di notte.",
                  "Registrata in una sola ripresa con le finestre aperte.",
                  "Synth caldi e un ritornello che resta in testa.",
                  "Un abbozzo acustico diventato un brano per band.",
                  "Una lettera d'amore all'ultimo treno della sera."],
        "topics": ["Come le città imparano a respirare", "La vita segreta dei fiumi",
                   "Perché dimentichiamo i sogni", "Cosa sanno le api della democrazia",
                   "L'economia dell'ombra", "Dentro la stanza più silenziosa del mondo",
                   "Come le mappe cambiano il nostro modo di pensare",
                   "La scienza di una buona notte di sonno",
                   "Quando le macchine imparano ad ascoltare",
                   "L'arte perduta di scrivere lettere"],
        "roles": ["urbanista", "economista", "giornalista", "pianista jazz", "paesaggista",
                  "artista", "specialista del sonno", "ecologista"],
        "blurbs": ["Parliamo di alberi, treni e della silenziosa economia dell'ombra.",
                   "Guardiamo i dati e le storie che ci sono dietro.",
                   "Lungo la strada incontriamo le persone che lo hanno reso possibile.",
                   "Una storia di pazienza, fortuna e curiosità."],
        "outros": ["Un nuovo episodio ogni martedì.", "Grazie per l'ascolto.",
                   "Iscriviti per non perdere nessun episodio."],
        "book_a": ["Il cartografo", "L'ultima estate", "La casa di sale", "L'ospite d'inverno",
                   "La campana silenziosa", "Il frutteto di vetro", "La lunga strada",
                   "La lanterna di carta"],
        "book_b": ["di Lisbona", "del Nord", "in riva al mare", "delle montagne", "di Trieste",
                   "di confine"],
        "book_blurbs": ["Una grande storia di famiglia, memoria e mare.",
                        "Due sconosciuti, un inverno e un segreto che nessuno sa mantenere.",
                        "Un giallo tenero e teso in una città dimenticata.",
                        "Il ritratto indimenticabile di un'amicizia lunga cinquant'anni."],
        "chapters": ["Il porto all'alba", "Arriva una lettera", "Attraversare il fiume",
                     "Il mercato notturno", "Quello che disse il vecchio", "Neve sui binari",
                     "Una stanza vuota", "Il ritorno"],
        "album": ("Dall'album ", "."),
        "produced": ("Scritta e prodotta da ", "."),
        "episode": ("Episodio ", ": "),
        "conversation": ("Una conversazione con ", ", "),
        "novel": ("Un romanzo di ", "."),
        "narrated": ("Letto da ", "."),
        "chapter": ("Capitolo ", ": "),
        "from_book": ("Da «", "»."),
        "loop": ("Un breve loop visivo per «", "»."),
    },
    "sv": {
        "title_a": ["Ljus", "Sånger", "Trädgårdar", "Brev", "Skuggor", "Hästar", "Fönster",
                    "Röster", "Vågor", "Gator", "Drömmar", "Gnistor"],
        "title_b": ["vid midnatt", "vid hamnen", "utan namn", "i sommar", "i regnet", "av papper",
                    "i söder", "av glas", "i gryningen", "av neon", "utan återvändo", "i dimman"],
        "first": ["Elsa", "Oskar", "Maja", "Erik", "Ebba", "Axel", "Ingrid", "Nils", "Alva",
                  "Gustav"],
        "last": ["Andersson", "Johansson", "Karlsson", "Nilsson", "Lindqvist", "Berg", "Holm",
                 "Sjöberg", "Lund", "Ekström"],
        "moods": ["En långsam sång om att lämna hemmet.", "Gjord för långa bilfärder i mörkret.",
                  "Inspelad i en enda tagning med fönstren öppna.",
                  "Varma syntar, ett rastlöst beat och en refräng som fastnar.",
                  "En akustisk skiss som blev en hel bandlåt.",
                  "Ett kärleksbrev till sista tåget hem."],
        "topics": ["Hur städer lär sig att andas", "Flodernas hemliga liv",
                   "Varför vi glömmer våra drömmar", "Vad bin vet om demokrati", "Skuggans ekonomi",
                   "Inne i världens tystaste rum", "Hur kartor formar vårt tänkande",
                   "Vetenskapen om en god natts sömn", "När maskiner lär sig att lyssna",
                   "Den förlorade konsten att skriva brev"],
        "roles": ["stadsplanerare", "marinbiolog", "historiker", "hjärnforskare", "jazzpianist",
                  "ekonom", "författare", "mjukvaruutvecklare"],
        "blurbs": ["Vi pratar om träd, tåg och skuggans tysta ekonomi.",
                   "Vi tittar på siffrorna och på berättelserna bakom dem.",
                   "På vägen möter vi människorna som gjorde det möjligt.",
                   "En berättelse om tålamod, tur och nyfikenhet."],
        "outros": ["Nya avsnitt varje tisdag.", "Tack för att du lyssnar.",
                   "Prenumerera så att du inte missar något avsnitt."],
        "book_a": ["Kartritaren", "Den sista sommaren", "Salthuset", "Vintergästen",
                   "Den tysta klockan", "Glasträdgården", "Den långa vägen", "Papperslyktan"],
        "book_b": ["från Lissabon", "i norr", "vid havet", "i bergen", "från Göteborg",
                   "vid gränsen"],
        "book_blurbs": ["En stor berättelse om familj, minnen och havet.",
                        "Två främlingar, en vinter och en hemlighet som ingen kan bevara.",
                        "Ett ömsint och spännande mysterium i en bortglömd stad.",
                        "Ett oförglömligt porträtt av en vänskap som varar i femtio år."],
        "chapters": ["Hamnen i gryningen", "Ett brev kommer", "Över floden", "Nattmarknaden",
                     "Vad den gamle mannen sa", "Snö på spåren", "Ett tomt rum", "Återkomsten"],
        "album": ("Från albumet ", "."),
        "produced": ("Skriven och producerad av ", "."),
        "episode": ("Avsnitt ", ": "),
        "conversation": ("Ett samtal med ", ", "),
        "novel": ("En roman av ", "."),
        "narrated": ("Uppläst av ", "."),
        "chapter": ("Kapitel ", ": "),
        "from_book": ("Ur ", "."),
        "loop": ("En kort animerad loop till ", "."),
    },
}
# fmt: on

# --------------------------------------------------------------------------------------------
# Deliberately broken rows, in the order they are planted while the budget (< 5 % of the rows)
# lasts. (kind, content type of the row it breaks, needs media, reason reported in `broken`)
# --------------------------------------------------------------------------------------------

# Genre sentences of English items: the one place the catalog states a genre, so the ground truth
# can hold it and `text_tags` be scored against it. Worded as a label would write it, never copied
# from extractors/taxonomy.yaml. Keys are taxonomy genre labels; each type draws from its own.
# fmt: off
GENRE_SENTENCES: dict[str, tuple[str, ...]] = {
    "pop": ("A glossy pop single with a huge hook, made for radio and the charts.",
            "Bright pop production and a chorus the whole stadium sings back."),
    "rock": ("Crunchy electric guitars and pounding drums from a four-piece rock band.",
             "A garage rock stomper with fuzzy riffs and a shouted chorus."),
    "hip_hop": ("The rapper trades rapid-fire verses over a heavy boom bap beat.",
                "A hip hop cut with trap hi-hats, 808s and a guest rap verse."),
    "electronic": ("A pulsing techno track built from analog synths and a four-on-the-floor kick.",
                   "Club-ready house music with a rolling bassline and a big synth drop."),
    "jazz": ("A late-night jazz session: piano, upright bass, brushed drums and a tenor sax solo.",
             "Swinging bebop from a jazz quartet, full of improvised horn lines."),
    "blues": ("A slow twelve-bar blues with moaning harmonica and slide guitar.",
              "Delta blues recorded on a porch: one voice, one guitar, one heavy heart."),
    "classical": ("A string quartet performs a sonata in four movements by a romantic composer.",
                  "The symphony orchestra plays an overture with soaring violins and horns."),
    "folk": ("A fingerpicked acoustic folk ballad from a travelling singer-songwriter.",
             "Traditional folk tunes on banjo, fiddle and acoustic guitar."),
    "country": ("A Nashville country song with pedal steel, a twangy voice and a pickup truck.",
                "Honky-tonk country about cowboys, dusty roads and a small-town bar."),
    "rnb_soul": ("Smooth R&B with silky soulful vocals over a slow groove.",
                 "Classic soul with a horn section, gospel backing singers and a Motown beat."),
    "metal": ("Thrash metal with down-tuned distorted riffs, blast beats and screamed vocals.",
              "A heavy metal anthem of shredding guitar solos and double-kick drums."),
    "reggae": ("Roots reggae from Kingston with an offbeat skank guitar and a deep dub bassline.",
               "Laid-back reggae and dancehall rhythms straight from Jamaica."),
    "latin": ("A salsa number with congas, timbales and a brass section, sung in Spanish.",
              "Reggaeton and bachata rhythms made for a Latin dance floor."),
    "ambient": ("Slow ambient drones and washes of texture with no beat at all, for deep focus.",
                "A drifting ambient soundscape of pads and field recordings to fall asleep to."),
    "true_crime": ("We investigate a real unsolved murder case, the police files and the trial.",
                   "A true crime series about a notorious con man and the detectives who caught him."),
    "comedy": ("Two comedians riff, joke and crack each other up for an hour of laughs.",
               "A stand-up comedy special full of silly jokes and improv bits."),
    "interview_talk": ("The host sits down with a guest to talk about their life, career and work.",
                       "A long-form interview and talk show with a new guest every week."),
    "news_commentary": ("The day's top news headlines, with analysis of current events and politics.",
                        "A daily news briefing: what happened today and why it matters."),
    "documentary": ("A documentary deep dive, with field reporting, into how the world's shipping works.",
                    "An explainer series that takes apart how something really works, story by story."),
    "self_help": ("Practical advice on building better habits, productivity and improving your life.",
                  "A self-help guide to confidence, motivation and getting more done each day."),
    "literary_fiction": ("A quiet literary novel about a family, its memories and ordinary lives.",
                         "Character-driven literary fiction about grief, marriage and a small town."),
    "mystery_thriller": ("A detective races to solve a murder in this twisting suspense thriller.",
                         "A gripping mystery: a body in the lake, a missing witness, and a killer close by."),
    "romance": ("A swoon-worthy romance novel: two rivals fall in love against the odds.",
                "A love story of a summer fling that becomes something more, with a happy ending."),
    "fantasy_scifi": ("An epic fantasy of wizards, dragons and a magic kingdom at war.",
                      "Science fiction aboard a starship exploring alien worlds at the edge of space."),
    "biography_memoir": ("A memoir: the true story of the author's own life, told in her own words.",
                         "The biography of a famous inventor, from a poor childhood to world fame."),
    "childrens": ("Bedtime stories for kids: fairy tales with talking animals and gentle adventures.",
                  "A picture-book adventure for young children, read aloud."),
}
# fmt: on
# Which genres each type's descriptions state: music for tracks, podcast genres for episodes,
# book genres for audiobooks.
# fmt: off
GENRES_BY_TYPE: dict[int, tuple[str, ...]] = {
    TRACK: ("pop", "rock", "hip_hop", "electronic", "jazz", "blues", "classical", "folk",
            "country", "rnb_soul", "metal", "reggae", "latin", "ambient"),
    EPISODE: ("true_crime", "comedy", "interview_talk", "news_commentary", "documentary",
              "self_help"),
    AUDIOBOOK: ("literary_fiction", "mystery_thriller", "romance", "fantasy_scifi",
                "biography_memoir", "childrens"),
}
# fmt: on
GENRE_SHARE = 0.5  # of English items of those types

BREAKS: tuple[tuple[str, int, bool, str], ...] = (
    ("empty_text", TRACK, False, "empty text: title and description are blank or whitespace"),
    ("missing_audio", TRACK, True, "missing audio: audio_uri points to a file that does not exist"),
    ("zero_byte_artwork", EPISODE, True, "zero-byte artwork: the artwork file is empty"),
    ("bad_content_type", EPISODE, False, "bad content_type: 'podcast' is not an allowed type"),
    ("truncated_audio", TRACK, True, "truncated audio: a FLAC cut to half its bytes"),
    ("tiny_artwork", TRACK, True, "tiny artwork: the image is 1x1 pixels"),
)
BAD_CONTENT_TYPE = "podcast"

ARTWORK_TRANSFORMS = ("jpeg_requality", "resize", "crop")
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
}
IMAGE_FORMATS: dict[str, tuple[str, str]] = {"png": ("PNG", "png"), "jpeg": ("JPEG", "jpg"),
                                             "webp": ("WEBP", "webp")}  # fmt: skip
PALETTE = np.array(
    [
        (230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87),
        (244, 162, 97), (233, 196, 106), (42, 157, 143), (38, 70, 83), (231, 111, 81),
        (106, 76, 147), (255, 202, 58), (138, 201, 38), (25, 130, 196), (255, 89, 94),
        (20, 20, 20), (250, 250, 250), (120, 120, 120), (214, 40, 118), (0, 95, 115),
    ],
    dtype=np.uint8,
)  # fmt: skip
VIDEO_FRAME_MS = 100  # GIF frame delays are whole centiseconds
PEAK_CEILING = 0.89  # -1 dBFS: headroom for the overshoot of lossy codecs
VIDEO_SIZE = (144, 256)  # width, height: a portrait canvas loop

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string(), nullable=False),
        pa.field("content_type", pa.string(), nullable=False),  # the intended type
        pa.field("language", pa.string()),
        pa.field("kind", pa.string()),  # music | speech | null (video: no audio)
        pa.field("genre", pa.string()),  # the text_tags genre the description states, if any
        pa.field("broken", pa.string()),  # the reason, as in SampleCatalog.broken
        pa.field("audio_format", pa.string()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int32()),
        pa.field("clip_duration_ms", pa.int64()),
        pa.field("tempo_bpm", pa.float64()),
        pa.field("first_beat_s", pa.float64()),
        pa.field("loudness_lufs", pa.float64()),  # measured on the decoded file, BS.1770-4
        pa.field("target_lufs", pa.float64()),
        pa.field("sample_peak_dbfs", pa.float64()),
        pa.field("speech_ratio", pa.float64()),  # share of the clip with voice in it
        pa.field("artwork_format", pa.string()),
        pa.field("artwork_width", pa.int32()),
        pa.field("artwork_height", pa.int32()),
        pa.field("dominant_rgb", pa.list_(pa.int32())),
        pa.field("dominant_fraction", pa.float64()),
        pa.field("palette", pa.list_(pa.list_(pa.int32()))),  # largest area first
        pa.field("palette_fractions", pa.list_(pa.float64())),
        pa.field("video_frames", pa.int32()),
        pa.field("video_fps", pa.float64()),
        pa.field("duplicate_of", pa.string()),  # the content_id whose media this one copies
        pa.field("duplicate_media", pa.string()),  # audio | artwork
        pa.field("duplicate_transform", pa.string()),
    ]
)


@dataclass(frozen=True)
class SampleCatalog:
    """What `write_sample_catalog` wrote, and what is deliberately wrong in it."""

    snapshot_uri: str
    media_dir: Path
    items: int
    counts_by_type: dict[str, int]  # `content_type` values as written (a broken row shows as such)
    broken: dict[str, str]  # content_id -> what is deliberately wrong with it
    ground_truth_uri: str


# --------------------------------------------------------------------------------------------
# Counter-based randomness: a value depends only on (seed, content type, item number, stream).
# --------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic, vectorised)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class _Keys:
    """Random streams for items of one content type, addressed by item number."""

    seed: int
    code: int
    index: np.ndarray  # item numbers (0-based, int64)

    def bits(self, stream: int) -> np.ndarray:
        salt_in = ((self.seed & 0xFFFFFFFF) << 24) | (self.code << 16) | (stream & 0xFFFF)
        salt = _splitmix(np.array([salt_in], dtype=np.uint64))
        return _splitmix(self.index.astype(np.uint64) ^ salt)

    def uniform(self, stream: int) -> np.ndarray:
        return (self.bits(stream) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def chance(self, stream: int, p: float) -> np.ndarray:
        return self.uniform(stream) < p

    def normal(self, stream: int) -> np.ndarray:
        u1 = np.maximum(self.uniform(stream), 2.0**-53)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * self.uniform(stream + 1))


# --------------------------------------------------------------------------------------------
# Vectorised text: every string is a join of columns picked from per-language word tables.
# --------------------------------------------------------------------------------------------


class _Words:
    """Word lists (one per language, or per genre), concatenated so a whole batch picks in one
    `take`: row `i` picks from list `which[i]`."""

    def __init__(self, lists: list[list[str]] | list[tuple[str, ...]]) -> None:
        self.values = pa.array([word for words in lists for word in words], pa.string())
        self.sizes = np.array([len(words) for words in lists], dtype=np.uint64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def pick(self, which: np.ndarray, bits: np.ndarray) -> pa.Array:
        return self.values.take(self.offsets[which] + (bits % self.sizes[which]).astype(np.int64))


class _Affix:
    """Per-language text around a slot, e.g. ("From the album ", ".")."""

    def __init__(self, field: str) -> None:
        self.before = pa.array([TEXT[lang][field][0] for lang in LANGUAGES], pa.string())
        self.after = pa.array([TEXT[lang][field][1] for lang in LANGUAGES], pa.string())

    def wrap(self, lang: np.ndarray, middle: pa.Array) -> pa.Array:
        return _join(self.before.take(lang), middle, self.after.take(lang))


@cache
def _words(field: str) -> _Words:
    return _Words([TEXT[lang][field] for lang in LANGUAGES])


@cache
def _affix(field: str) -> _Affix:
    return _Affix(field)


_LANGUAGE_CODES = pa.array(LANGUAGES, pa.string())
_LANGUAGE_CUMULATIVE = np.cumsum(LANGUAGE_WEIGHTS) / sum(LANGUAGE_WEIGHTS)
_NULL_STRING = pa.scalar(None, pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _sentences(*sentences: pa.Array) -> pa.Array:
    """Space-joined sentences; a null sentence is left out."""
    return pc.binary_join_element_wise(*sentences, " ", null_handling="skip")


def _maybe(values: pa.Array, keep: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(keep), values, _NULL_STRING)


def _numbers(values: np.ndarray, width: int = 0) -> pa.Array:
    text = pc.cast(pa.array(values, pa.int64()), pa.string())
    return pc.utf8_lpad(text, width, "0") if width else text


def _language(keys: _Keys) -> np.ndarray:
    chosen = np.searchsorted(_LANGUAGE_CUMULATIVE, keys.uniform(0), side="right")
    return np.minimum(chosen, len(LANGUAGES) - 1)


def _person(keys: _Keys, lang: np.ndarray, stream: int) -> pa.Array:
    first = _words("first").pick(lang, keys.bits(stream))
    return _join(first, " ", _words("last").pick(lang, keys.bits(stream + 1)))


def _song_title(keys: _Keys, lang: np.ndarray, stream: int) -> pa.Array:
    head = _words("title_a").pick(lang, keys.bits(stream))
    return _join(head, " ", _words("title_b").pick(lang, keys.bits(stream + 1)))


def _book_title(keys: _Keys, lang: np.ndarray) -> pa.Array:
    head = _words("book_a").pick(lang, keys.bits(30))
    return _join(head, " ", _words("book_b").pick(lang, keys.bits(31)))


@cache
def _genre_sentences(code: int) -> _Words:
    return _Words([GENRE_SENTENCES[label] for label in GENRES_BY_TYPE[code]])


def _genre(keys: _Keys, lang: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(a sentence stating the item's genre, that genre) for GENRE_SHARE of English items; nulls
    elsewhere. The genre is ground truth for `text_tags`."""
    labels = GENRES_BY_TYPE[keys.code]
    which = (keys.bits(70) % np.uint64(len(labels))).astype(np.int64)
    sentence = _genre_sentences(keys.code).pick(which, keys.bits(71))
    stated = (lang == LANGUAGES.index("en")) & keys.chance(72, GENRE_SHARE)
    label = pa.array(labels, pa.string()).take(which)
    return _maybe(sentence, stated), _maybe(label, stated)


def _lognormal_ms(
    keys: _Keys, median_s: float, sigma: float, low_s: float, high_s: float
) -> np.ndarray:
    seconds = np.clip(median_s * np.exp(sigma * keys.normal(90)), low_s, high_s)
    return np.round(seconds * 1000).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Where each row sits: blocks of CYCLE rows, each holding SHARES[type] items of every type.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    items: int
    seed: int
    cycle: np.ndarray  # type code at each position of a block
    rank: np.ndarray  # the position's rank among the block's positions of the same type
    per_cycle: np.ndarray  # items of each type in a full block
    counts: np.ndarray  # items of each type in the catalog
    id_width: int
    chaptered_books: int

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(type code, item number within its type) of each row."""
        block, position = np.divmod(rows, CYCLE)
        code = self.cycle[position]
        return code, block * self.per_cycle[code] + self.rank[position]

    def row_of(self, code: int, number: int) -> int:
        block, rank = divmod(number, int(self.per_cycle[code]))
        return block * CYCLE + int(np.flatnonzero(self.cycle == code)[rank])


@lru_cache(maxsize=16)
def _plan(items: int, seed: int) -> _Plan:
    if items < 1:
        raise ValueError(f"a sample catalog needs at least one item, got {items}")
    cycle = np.repeat(np.array(list(SHARES), dtype=np.int64), list(SHARES.values()))
    cycle = np.random.default_rng([seed, 1]).permutation(cycle)
    # A chapter never appears before the first audiobook, so every chapter has a parent.
    first_book, first_chapter = (int(np.argmax(cycle == c)) for c in (AUDIOBOOK, CHAPTER))
    if first_chapter < first_book:
        cycle[[first_book, first_chapter]] = cycle[[first_chapter, first_book]]
    rank = np.zeros(CYCLE, dtype=np.int64)
    for code in SHARES:
        rank[cycle == code] = np.arange(SHARES[code])
    per_cycle = np.bincount(cycle, minlength=len(CONTENT_TYPES))
    full, rest = divmod(items, CYCLE)
    counts = full * per_cycle + np.bincount(cycle[:rest], minlength=len(CONTENT_TYPES))
    width = max(6, len(str(int(counts.max()))))
    books = max(1, int(counts[AUDIOBOOK]) // BOOKS_PER_CHAPTERED_BOOK)
    return _Plan(items, seed, cycle, rank, per_cycle, counts, width, books)


# --------------------------------------------------------------------------------------------
# Rows of each content type
# --------------------------------------------------------------------------------------------

_Columns = dict[str, Any]  # column name -> pyarrow array, or numpy codes / values to convert


def _ids(plan: _Plan, code: int, number: np.ndarray) -> pa.Array:
    if code == CHAPTER:
        book, chapter = _chapter_parent(plan, number)
        return _join("chapter:", _numbers(book + 1, plan.id_width), "-", _numbers(chapter, 2))
    return _join(f"{CONTENT_TYPES[code]}:", _numbers(number + 1, plan.id_width))


def _chapter_parent(plan: _Plan, number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(audiobook number, 1-based chapter number) of each chapter.

    Chapters are dealt round the first `chaptered_books` audiobooks like cards.
    """
    round_, book = np.divmod(number, plan.chaptered_books)
    return book, round_ + 1


def _track_rows(plan: _Plan, keys: _Keys) -> _Columns:
    lang = _language(keys)
    album = _affix("album").wrap(lang, _song_title(keys, lang, 20))
    produced = _maybe(_affix("produced").wrap(lang, _person(keys, lang, 22)), keys.chance(24, 0.5))
    mood = _maybe(_words("moods").pick(lang, keys.bits(25)), keys.chance(26, 0.4))
    genre_sentence, genre = _genre(keys, lang)
    text = _sentences(genre_sentence, album, produced, mood)
    roll = keys.uniform(27)  # 35 % have no description, 5 % an empty one
    described = roll >= 0.40
    description = pc.if_else(pa.array(roll < 0.35), _NULL_STRING, text)
    description = pc.if_else(pa.array(~described & (roll >= 0.35)), "", description)
    return {
        "title": _song_title(keys, lang, 10),
        "description": description,
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 210, 0.3, 60, 600),
        "genre": _maybe(genre, described),
    }


def _episode_rows(plan: _Plan, keys: _Keys) -> _Columns:
    lang = _language(keys)
    episode = _affix("episode")
    number = _numbers(1 + (keys.bits(11) % np.uint64(250)).astype(np.int64))
    topic = _words("topics").pick(lang, keys.bits(12))
    title = _join(episode.before.take(lang), number, episode.after.take(lang), topic)
    talk = _affix("conversation")
    role = _words("roles").pick(lang, keys.bits(22))
    guest = _join(talk.before.take(lang), _person(keys, lang, 20), talk.after.take(lang), role, ".")
    blurb = _maybe(_words("blurbs").pick(lang, keys.bits(23)), keys.chance(24, 0.7))
    outro = _maybe(_words("outros").pick(lang, keys.bits(25)), keys.chance(26, 0.35))
    genre_sentence, genre = _genre(keys, lang)
    return {
        "title": title,
        "description": _sentences(genre_sentence, guest, blurb, outro),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 2400, 0.5, 300, 3 * 3600),
        "genre": genre,
    }


def _book_text(keys: _Keys, lang: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """An audiobook's (author sentence, narrator sentence); chapters repeat their book's."""
    author = _affix("novel").wrap(lang, _person(keys, lang, 40))
    return author, _affix("narrated").wrap(lang, _person(keys, lang, 42))


def _audiobook_rows(plan: _Plan, keys: _Keys) -> _Columns:
    lang = _language(keys)
    author, narrator = _book_text(keys, lang)
    blurb = _maybe(_words("book_blurbs").pick(lang, keys.bits(44)), keys.chance(45, 0.8))
    genre_sentence, genre = _genre(keys, lang)
    narrated = _maybe(narrator, keys.chance(46, 0.6))
    return {
        "title": _book_title(keys, lang),
        "description": _sentences(author, genre_sentence, blurb, narrated),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 8 * 3600, 0.45, 3600, 30 * 3600),
        "genre": genre,
    }


def _chapter_rows(plan: _Plan, keys: _Keys) -> _Columns:
    parent, number = _chapter_parent(plan, keys.index)
    book = _Keys(keys.seed, AUDIOBOOK, parent)
    lang = _language(book)  # a chapter speaks its book's language
    name = _words("chapters").pick(lang, book.bits(47) + number.astype(np.uint64))
    heading = _affix("chapter")
    title = _join(heading.before.take(lang), _numbers(number), heading.after.take(lang), name)
    _, narrator = _book_text(book, lang)
    source = _affix("from_book").wrap(lang, _book_title(book, lang))
    return {
        "title": title,
        "description": _sentences(source, _maybe(narrator, keys.chance(46, 0.5))),
        "language": lang,
        "duration_ms": _lognormal_ms(keys, 1500, 0.35, 300, 5400),
    }


def _video_rows(plan: _Plan, keys: _Keys) -> _Columns:
    lang = _language(keys)
    title = _song_title(keys, lang, 10)
    frames = 30 + (keys.bits(60) % np.uint64(51)).astype(np.int64)  # 3–8 s at 10 frames/s
    return {
        "title": title,
        "description": _affix("loop").wrap(lang, title),
        "language": lang,
        "duration_ms": frames * VIDEO_FRAME_MS,
    }


_BUILDERS: dict[int, Callable[[_Plan, _Keys], _Columns]] = {
    TRACK: _track_rows,
    EPISODE: _episode_rows,
    AUDIOBOOK: _audiobook_rows,
    CHAPTER: _chapter_rows,
    VIDEO: _video_rows,
}
_REFERENCE_US = int(REFERENCE_TIME.timestamp() * 1_000_000)
_SPREAD_US = UPDATED_SPREAD_DAYS * 86_400 * 1_000_000


def _type_rows(plan: _Plan, code: int, number: np.ndarray) -> _Columns:
    """All catalog columns but the media URIs for items of one type."""
    keys = _Keys(plan.seed, code, number)
    columns = _BUILDERS[code](plan, keys)
    columns.setdefault("genre", pa.nulls(len(number), pa.string()))
    columns["content_id"] = _ids(plan, code, number)
    columns["language"] = _LANGUAGE_CODES.take(columns["language"])
    columns["duration_ms"] = pa.array(columns["duration_ms"], pa.int64())
    age_us = (keys.uniform(99) * _SPREAD_US).astype(np.int64)
    columns["updated_at"] = pa.array(_REFERENCE_US - age_us, pa.timestamp("us", tz="UTC"))
    return columns


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _breaks(items: int, seed: int, with_media: bool) -> dict[int, str]:
    """Row -> break kind. Rows are drawn for every kind so they never move with `with_media`."""
    plan = _plan(items, seed)
    rng = np.random.default_rng([seed, 2])
    budget = max(0, math.ceil(items / 20) - 1)  # strictly fewer than 5 % of the rows
    chosen: dict[int, str] = {}
    taken: set[int] = set()
    for kind, code, needs_media, _ in BREAKS:
        count = int(plan.counts[code])
        draws = [plan.row_of(code, int(n)) for n in rng.integers(0, max(count, 1), size=8)]
        row = next((r for r in draws if count and r not in taken), None)
        if row is None:
            continue
        taken.add(row)
        if len(chosen) < budget and (with_media or not needs_media):
            chosen[row] = kind
    return chosen


_REASONS = {kind: reason for kind, _, _, reason in BREAKS}


def _break_text(columns: dict[str, pa.Array], rows: np.ndarray, breaks: dict[int, str]) -> None:
    """Plant the text-level breaks (blank text, unknown content type) in a batch's columns."""
    for kind, column, value in (
        ("empty_text", "title", "   "),
        ("empty_text", "description", ""),
        ("bad_content_type", "content_type", BAD_CONTENT_TYPE),
    ):
        targets = [row for row, k in breaks.items() if k == kind]
        mask = np.isin(rows, targets)
        if mask.any():
            columns[column] = pc.if_else(pa.array(mask), value, columns[column])


def _text_batch(
    plan: _Plan, start: int, stop: int, breaks: dict[int, str]
) -> tuple[pa.RecordBatch, pa.Array]:
    """Rows [start, stop) and the genre each one's text states: built type by type (each type
    has its own templates), then put back in row order."""
    rows = np.arange(start, stop, dtype=np.int64)
    code, number = plan.locate(rows)
    order = np.argsort(code, kind="stable")
    parts = []
    for c in np.unique(code):
        selected = order[code[order] == c]
        parts.append(_type_rows(plan, int(c), number[selected]))
    back = np.empty_like(order)
    back[order] = np.arange(len(order))

    columns = {name: pa.concat_arrays([p[name] for p in parts]).take(back) for name in parts[0]}
    columns["content_type"] = pa.array(CONTENT_TYPES, pa.string()).take(code)
    for name in ("audio_uri", "artwork_uri", "video_uri"):
        columns[name] = pa.nulls(len(rows), pa.string())
    _break_text(columns, rows, breaks)
    genre = pc.if_else(pa.array(np.isin(rows, list(breaks))), _NULL_STRING, columns["genre"])
    batch = pa.RecordBatch.from_arrays(
        [columns[f.name] for f in CATALOG_SCHEMA], schema=CATALOG_SCHEMA
    )
    return batch, genre


def iter_catalog_batches(
    items: int,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    *,
    with_broken: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Text-only catalog rows as RecordBatches with CATALOG_SCHEMA, media URIs null.

    Why batches: a 1M-item snapshot for a benchmark streams into `write_deltalake` through a
    RecordBatchReader without ever being held in memory. Every batch is computed from its row
    numbers alone, so the rows are identical whatever `batch_rows` is.
    """
    plan = _plan(items, seed)
    breaks = _breaks(items, seed, False) if with_broken else {}
    for start in range(0, items, batch_rows):
        yield _text_batch(plan, start, min(items, start + batch_rows), breaks)[0]


def generate_catalog_rows(items: int, seed: int = 0) -> pa.Table:
    """The sample catalog's text-only rows (no media, URIs null) as one table.

    Why: benchmarks and tests need a realistic catalog of any size in a few seconds without
    touching the disk. The text-level broken rows (blank text, unknown content type) are
    included, as in the written snapshot.
    """
    return pa.Table.from_batches(list(iter_catalog_batches(items, seed)), CATALOG_SCHEMA)


# --------------------------------------------------------------------------------------------
# Audio synthesis
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clip:
    pcm: np.ndarray  # int16, (frames, channels)
    rate: int
    fmt: str
    kind: str
    target_lufs: float
    loudness_lufs: float  # of the 16-bit samples, as a lossless decoder returns them
    tempo_bpm: float | None = None
    first_beat_s: float | None = None
    speech_ratio: float | None = None


def _music(rng: np.random.Generator, rate: int, channels: int, frames: int):
    """A kick on every beat over a sustained chord: onsets fall exactly on known samples."""
    bpm = round(float(rng.uniform(70, 180)), 1)
    period = 60.0 * rate / bpm
    first = int(rng.integers(1, int(period // 2)))  # not sample 0: an onset is a jump from silence
    onsets = np.round(first + period * np.arange(int((frames - first) / period) + 1))
    onsets = onsets[onsets < frames].astype(np.int64)
    t = np.arange(round(0.15 * rate), dtype=np.float32) / rate
    sweep = 50 + 100 * np.exp(-t / 0.02)  # pitch drops 150 -> 50 Hz
    kick = np.cos(2 * np.pi * np.cumsum(sweep) / rate - 2 * np.pi * sweep[0] / rate)
    kick *= np.exp(-t / 0.05)  # starts at its peak: the onset is a one-sample jump
    beats = np.zeros(frames, dtype=np.float32)
    for k, onset in enumerate(onsets):
        length = min(len(kick), frames - onset)
        beats[onset : onset + length] += (0.6 if k % 4 == 0 else 0.48) * kick[:length]
    root = float(rng.choice([110.0, 130.81, 146.83, 164.81, 196.0, 220.0]))
    step = np.arange(frames, dtype=np.float32) * np.float32(2 * np.pi * root / rate)
    level = np.float32(rng.uniform(0.25, 0.6) / 3)
    out = np.empty((frames, channels), dtype=np.float32)
    for ch in range(channels):  # a major triad, the right channel slightly detuned
        detune = 1.0 + 0.002 * ch
        chord = sum(np.sin(step * np.float32(r * detune) + ch) for r in (1.0, 1.26, 1.5))
        out[:, ch] = beats + level * chord
    return out, bpm, first / rate


def _speech(rng: np.random.Generator, rate: int, channels: int, frames: int):
    """Voice-like audio: a gliding buzzy pitch plus breath noise, cut into syllables and pauses."""
    envelope = np.zeros(frames, dtype=np.float32)
    position = int(rng.uniform(0.1, 0.4) * rate)
    while position < frames:
        for _ in range(int(rng.integers(3, 11))):  # one phrase of syllables
            length = int(rng.uniform(0.12, 0.25) * rate)
            stop = min(frames, position + length)
            shape = np.sin(np.pi * np.arange(stop - position, dtype=np.float32) / length) ** 2
            envelope[position:stop] = rng.uniform(0.5, 1.0) * shape
            position += length + int(rng.uniform(0.01, 0.04) * rate)
            if position >= frames:
                break
        position += int(rng.uniform(0.2, 0.6) * rate)  # a pause between phrases
    time = np.arange(frames, dtype=np.float32) / rate
    wobble = np.sin(time * np.float32(2 * np.pi * rng.uniform(0.3, 0.9)))
    f0 = np.float32(rng.uniform(95, 230)) * (1 + np.float32(0.08) * wobble)
    phase = (np.cumsum(f0, dtype=np.float64) / rate % 1.0).astype(np.float32)
    voice = np.sin(2 * np.pi * phase) + 0.5 * np.sin(4 * np.pi * phase) + 0.3 * (phase - 0.5)
    noise = rng.standard_normal((frames, channels), dtype=np.float32) * np.float32(0.25)
    out = (voice[:, None] + noise) * envelope[:, None]
    return out, float(np.mean(envelope > 0.01))


def _normalise(signal: np.ndarray, rate: int, target_lufs: float) -> tuple[np.ndarray, float]:
    """16-bit samples at the target loudness (peaks never past PEAK_CEILING), and their loudness.

    The loudness is measured again on the decoded samples, `pcm / 32768`: scaling moves the
    relative gate with the gain but not the absolute -70 LUFS one, so the quiet tails of speech
    can cross it and the result can differ from `measured + gain` (by 0.075 LU on one clip).
    """
    measured = integrated_loudness(signal, rate)
    gain = min(10 ** ((target_lufs - measured) / 20), PEAK_CEILING / float(np.abs(signal).max()))
    pcm = np.round(signal * np.float32(gain * 32767)).astype(np.int16)
    return pcm, integrated_loudness(pcm / 32768, rate)


@lru_cache(maxsize=16)
def _clip(seed: int, code: int, number: int) -> _Clip:
    """The preview clip of one item; a duplicate re-renders its source's clip from this."""
    rng = np.random.default_rng([seed, code, number, 11])
    music = code == TRACK
    rates, shares = ([22050, 44100], [0.75, 0.25]) if music else ([16000, 22050], [0.5, 0.5])
    rate = int(rng.choice(rates, p=shares))
    channels = 2 if rng.random() < 0.25 else 1
    fmt = str(rng.choice(list(AUDIO_FORMATS), p=[0.80, 0.14, 0.06]))  # OGG is slow to encode
    frames = int(rng.uniform(6.0, 8.0) * rate)
    target = round(float(rng.uniform(-30.0, -10.0)), 2)
    if music:
        signal, bpm, first = _music(rng, rate, channels, frames)
        extra: dict[str, Any] = {"tempo_bpm": bpm, "first_beat_s": first}
    else:
        signal, ratio = _speech(rng, rate, channels, frames)
        extra = {"speech_ratio": ratio}
    pcm, loudness = _normalise(signal, rate, target)
    return _Clip(pcm, rate, fmt, "music" if music else "speech", target, loudness, **extra)


def _write_clip(path: Path, clip: _Clip, fmt: str) -> tuple[float, float]:
    """Encode a clip; (integrated loudness, sample peak in dBFS) of what a decoder reads back."""
    container, subtype = AUDIO_FORMATS[fmt]
    sf.write(path, clip.pcm, clip.rate, format=container, subtype=subtype)
    if fmt == "ogg":  # lossy: measure what was actually stored
        decoded, _ = sf.read(path, dtype="float32", always_2d=True)
        return integrated_loudness(decoded, clip.rate), float(np.abs(decoded).max())
    return clip.loudness_lufs, int(np.abs(clip.pcm.astype(np.int32)).max()) / 32768


def _audio_truth(clip: _Clip, fmt: str, measured: tuple[float, float] | None) -> dict[str, Any]:
    truth: dict[str, Any] = {
        "kind": clip.kind,
        "audio_format": fmt,
        "sample_rate": clip.rate,
        "channels": clip.pcm.shape[1],
        "clip_duration_ms": round(1000 * clip.pcm.shape[0] / clip.rate),
        "tempo_bpm": clip.tempo_bpm,
        "first_beat_s": clip.first_beat_s,
        "target_lufs": clip.target_lufs,
        "speech_ratio": clip.speech_ratio,
    }
    if measured is not None:
        loudness, peak = measured
        truth["loudness_lufs"] = round(loudness, 3)
        truth["sample_peak_dbfs"] = round(20 * math.log10(peak), 3)
    return truth


# --------------------------------------------------------------------------------------------
# Artwork: a few solid blocks, one of which covers at least half the picture
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Art:
    labels: np.ndarray  # (h, w) index into colours
    colours: np.ndarray  # (k, 3) uint8
    fmt: str
    quality: int

    def image(self) -> Image.Image:
        return _paint(self.labels, self.colours)


@lru_cache(maxsize=64)
def _art(seed: int, code: int, number: int) -> _Art:
    rng = np.random.default_rng([seed, code, number, 13])
    size = int(rng.choice([300, 360, 400, 480, 512, 600, 640]))
    fmt = str(rng.choice(list(IMAGE_FORMATS), p=[0.5, 0.42, 0.08]))
    colours = PALETTE[rng.choice(len(PALETTE), size=int(rng.integers(3, 5)), replace=False)]
    split = round(size * rng.uniform(0.5, 0.68))  # the dominant block's width
    labels = np.zeros((size, size), dtype=np.uint8)
    shares = rng.dirichlet(np.full(len(colours) - 1, 3.0))
    bounds = np.round(np.concatenate([[0], np.cumsum(shares)]) * size).astype(int)
    for k, (top, bottom) in enumerate(itertools.pairwise(bounds)):
        labels[top:bottom, split:] = k + 1
    labels = np.rot90(labels, int(rng.integers(4))).copy()
    return _Art(labels, colours, fmt, int(rng.integers(80, 96)))


def _paint(labels: np.ndarray, colours: np.ndarray) -> Image.Image:
    """An RGB image of a label map (palette lookup in Pillow: numpy fancy indexing is 10x slower)."""
    indexed = Image.fromarray(labels, mode="P")
    indexed.putpalette(colours.astype(np.uint8).ravel().tolist())
    return indexed.convert("RGB")


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=IMAGE_FORMATS[fmt][0], **options)
    return buffer.getvalue()


def _art_truth(labels: np.ndarray, colours: np.ndarray, fmt: str) -> dict[str, Any]:
    fractions = np.bincount(labels.ravel(), minlength=len(colours)) / labels.size
    order = np.argsort(-fractions, kind="stable")
    palette = [[int(v) for v in colours[k]] for k in order if fractions[k] > 0]
    return {
        "artwork_format": fmt,
        "artwork_width": labels.shape[1],
        "artwork_height": labels.shape[0],
        "dominant_rgb": palette[0],
        "dominant_fraction": round(float(fractions[order[0]]), 6),
        "palette": palette,
        "palette_fractions": [round(float(fractions[k]), 6) for k in order if fractions[k] > 0],
    }


def _transform_art(art: _Art, transform: str, rng: np.random.Generator):
    """A near-duplicate of `art`: (labels, image bytes, format) after one everyday edit."""
    source = _encode(art.image(), art.fmt, art.quality)
    if transform == "jpeg_requality":  # decoded and saved again at a lower quality
        decoded = Image.open(io.BytesIO(source)).convert("RGB")
        return art.labels, _encode(decoded, "jpeg", int(rng.integers(30, 60))), "jpeg"
    fmt = "png" if art.fmt == "webp" else art.fmt
    height, width = art.labels.shape
    if transform == "resize":
        scale = rng.uniform(0.5, 0.8)
        size = (round(width * scale), round(height * scale))
        image = art.image().resize(size, Image.Resampling.LANCZOS)
        rows = (np.arange(size[1]) / scale).astype(int)
        cols = (np.arange(size[0]) / scale).astype(int)
        return art.labels[np.ix_(rows, cols)], _encode(image, fmt, 90), fmt
    left, top, right, bottom = (int(v) for v in rng.integers(3, 7, size=4) * width // 100)
    labels = art.labels[top : height - bottom, left : width - right]
    return labels, _encode(_paint(labels, art.colours), fmt, 90), fmt


def _video_frames(art: _Art, frames: int) -> list[Image.Image]:
    """A canvas loop: a square of the artwork's second colour sliding over its dominant one."""
    width, height = VIDEO_SIZE
    side = width // 3
    top = (height - side) // 2
    out = []
    for k in range(frames):
        labels = np.zeros((height, width), dtype=np.uint8)
        left = (k * (width - side)) // max(1, frames - 1)
        labels[top : top + side, left : left + side] = 1
        frame = Image.fromarray(labels, mode="P")
        frame.putpalette(art.colours[:2].ravel().tolist())
        out.append(frame)
    return out


# --------------------------------------------------------------------------------------------
# Planted duplicates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Copy:
    """An item whose audio or artwork is another item's, lightly transformed."""

    media: str  # audio | artwork
    code: int  # the source item
    number: int
    source_id: str
    transform: str  # reencode:<fmt> | jpeg_requality | resize | crop


@lru_cache(maxsize=16)
def _duplicates(items: int, seed: int) -> dict[int, _Copy]:
    """Row -> the copy planted there: a handful of re-encoded clips and edited artworks.

    Why: near-duplicate detection needs pairs whose bytes differ but whose content is the same.
    Sources and copies are distinct, and never broken rows.
    """
    if items < 20:
        return {}
    plan = _plan(items, seed)
    broken = set(_breaks(items, seed, True))
    rows = [r for r in np.random.default_rng([seed, 3]).permutation(items).tolist()
            if r not in broken]  # fmt: skip
    codes, numbers = plan.locate(np.array(rows, dtype=np.int64))
    where = {row: (int(c), int(n)) for row, c, n in zip(rows, codes, numbers, strict=True)}
    used: set[int] = set()

    def pairs(pool: list[int], count: int) -> list[tuple[int, int, int, str]]:
        free = [r for r in pool if r not in used][: 2 * count]
        used.update(free)
        out = []
        for source, copy in zip(free[::2], free[1::2], strict=False):
            code, number = where[source]
            out.append((copy, code, number, _ids(plan, code, np.array([number]))[0].as_py()))
        return out

    chosen: dict[int, _Copy] = {}
    tracks = [r for r in rows if where[r][0] == TRACK]
    for k, (copy, code, number, source_id) in enumerate(pairs(tracks, min(8, items // 60 or 1))):
        other = [f for f in AUDIO_FORMATS if f != _clip(seed, code, number).fmt][k % 2]
        chosen[copy] = _Copy("audio", code, number, source_id, f"reencode:{other}")
    for k, (copy, code, number, source_id) in enumerate(pairs(rows, min(12, items // 40 or 1))):
        transform = ARTWORK_TRANSFORMS[k % len(ARTWORK_TRANSFORMS)]
        chosen[copy] = _Copy("artwork", code, number, source_id, transform)
    return chosen


# --------------------------------------------------------------------------------------------
# Media for one item
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MediaJob:
    content_id: str
    code: int
    number: int
    duration_ms: int
    broken: str | None  # break kind
    copy: _Copy | None

    def copies(self, media: str) -> _Copy | None:
        return self.copy if self.copy and self.copy.media == media else None


@dataclass(frozen=True)
class _Media:
    audio_uri: str | None
    artwork_uri: str | None
    video_uri: str | None
    truth: dict[str, Any]


def _stem(content_id: str) -> str:
    return content_id.replace(":", "-")


def _write_audio(root: Path, seed: int, job: _MediaJob) -> tuple[str | None, dict[str, Any]]:
    if job.code == VIDEO:
        return None, {}
    copy = job.copies("audio")
    clip = _clip(seed, copy.code, copy.number) if copy else _clip(seed, job.code, job.number)
    fmt = copy.transform.removeprefix("reencode:") if copy else clip.fmt
    if job.broken == "truncated_audio":
        fmt = "flac"  # a cut FLAC fails to decode; a cut WAV would silently read short
    path = root / "audio" / f"{_stem(job.content_id)}.{fmt}"
    if job.broken == "missing_audio":
        path.unlink(missing_ok=True)  # a previous run may have left one there
        return str(path), {}
    measured: tuple[float, float] | None = _write_clip(path, clip, fmt)
    if job.broken == "truncated_audio":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        measured = None
    return str(path), _audio_truth(clip, fmt, measured)


def _artwork_bytes(seed: int, job: _MediaJob) -> tuple[bytes, np.ndarray, np.ndarray, str]:
    """(file bytes, label map, colours, format) of an item's artwork, broken or copied."""
    copy = job.copies("artwork")
    if copy:
        rng = np.random.default_rng([seed, job.code, job.number, 17])
        source = _art(seed, copy.code, copy.number)
        labels, data, fmt = _transform_art(source, copy.transform, rng)
        return data, labels, source.colours, fmt
    art = _art(seed, job.code, job.number)
    if job.broken == "zero_byte_artwork":
        return b"", art.labels, art.colours, art.fmt
    if job.broken == "tiny_artwork":
        return (
            _encode(_paint(art.labels[:1, :1], art.colours), "png", 0),
            art.labels[:1, :1],
            art.colours,
            "png",
        )
    return _encode(art.image(), art.fmt, art.quality), art.labels, art.colours, art.fmt


def _write_artwork(root: Path, seed: int, job: _MediaJob) -> tuple[str, dict[str, Any]]:
    data, labels, colours, fmt = _artwork_bytes(seed, job)
    path = root / "artwork" / f"{_stem(job.content_id)}.{IMAGE_FORMATS[fmt][1]}"
    path.write_bytes(data)
    return str(path), _art_truth(labels, colours, fmt) if data else {"artwork_format": fmt}


def _write_video(root: Path, seed: int, job: _MediaJob) -> tuple[str, dict[str, Any]]:
    frames = _video_frames(_art(seed, job.code, job.number), job.duration_ms // VIDEO_FRAME_MS)
    path = root / "video" / f"{_stem(job.content_id)}.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=VIDEO_FRAME_MS, loop=0)
    return str(path), {"video_frames": len(frames), "video_fps": 1000 / VIDEO_FRAME_MS}


def _write_media(root: Path, seed: int, job: _MediaJob) -> _Media:
    """Every file of one item, and what they truly hold."""
    audio_uri, truth = _write_audio(root, seed, job)
    artwork_uri, artwork_truth = _write_artwork(root, seed, job)
    truth |= artwork_truth
    video_uri = None
    if job.code == VIDEO:
        video_uri, video_truth = _write_video(root, seed, job)
        truth |= video_truth
    if job.copy:
        truth |= {"duplicate_of": job.copy.source_id, "duplicate_media": job.copy.media,
                  "duplicate_transform": job.copy.transform}  # fmt: skip
    return _Media(audio_uri, artwork_uri, video_uri, truth)


# --------------------------------------------------------------------------------------------
# Writing the sample catalog
# --------------------------------------------------------------------------------------------

_KIND_BY_TYPE = pa.array(
    [
        "music" if c == TRACK else None if c == VIDEO else "speech"
        for c in range(len(CONTENT_TYPES))
    ],
    pa.string(),
)
_MEDIA_TRUTH = pa.schema(
    [
        f
        for f in GROUND_TRUTH_SCHEMA
        if f.name not in ("content_id", "content_type", "language", "genre")
    ]
)
MEDIA_BATCH_ROWS = 1024


def _truth_batch(
    batch: pa.RecordBatch,
    code: np.ndarray,
    genre: pa.Array,
    reasons: list[str | None],
    media: list[_Media] | None,
) -> pa.RecordBatch:
    """Ground-truth rows for one catalog batch (media columns null without media)."""
    n = batch.num_rows
    if media:
        found = pa.Table.from_pylist([m.truth for m in media], schema=_MEDIA_TRUTH)
        columns = {name: found.column(name).combine_chunks() for name in _MEDIA_TRUTH.names}
    else:
        columns = {f.name: pa.nulls(n, f.type) for f in _MEDIA_TRUTH}
    columns |= {
        "content_id": batch.column("content_id"),
        "content_type": pa.array(CONTENT_TYPES, pa.string()).take(code),
        "language": batch.column("language"),
        "kind": _KIND_BY_TYPE.take(code),
        "genre": genre,
        "broken": pa.array(reasons, pa.string()),
    }
    return pa.RecordBatch.from_arrays(
        [columns[f.name] for f in GROUND_TRUTH_SCHEMA], schema=GROUND_TRUTH_SCHEMA
    )


def _with_uris(batch: pa.RecordBatch, media: list[_Media]) -> pa.RecordBatch:
    uris = {
        "audio_uri": pa.array([m.audio_uri for m in media], pa.string()),
        "artwork_uri": pa.array([m.artwork_uri for m in media], pa.string()),
        "video_uri": pa.array([m.video_uri for m in media], pa.string()),
    }
    arrays = [uris.get(f.name, batch.column(f.name)) for f in CATALOG_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=CATALOG_SCHEMA)


@dataclass
class _Tally:
    """What went by while the batches streamed into the Delta writer."""

    counts: dict[str, int]
    broken: dict[str, str]

    def add(self, batch: pa.RecordBatch, reasons: list[str | None]) -> None:
        for entry in pc.value_counts(batch.column("content_type")).to_pylist():
            self.counts[entry["values"]] = self.counts.get(entry["values"], 0) + entry["counts"]
        ids = batch.column("content_id")
        self.broken |= {ids[i].as_py(): r for i, r in enumerate(reasons) if r is not None}


def write_sample_catalog(
    snapshot_uri: str,
    media_dir: str | Path,
    items: int,
    *,
    seed: int = 0,
    with_media: bool = True,
    storage_options: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SampleCatalog:
    """Write the sample snapshot (Delta, overwrite), its media and its ground truth.

    Why one call: the demo, the CLI (`signals sample`) and the end-to-end tests need the same
    catalog with the same planted problems, and the ground truth must describe exactly the files
    that were written. Rows stream batch by batch into one Delta commit, so size is bounded only
    by the disk. `media_dir` must be local (the snapshot may be remote, via `storage_options`).
    `progress(n)` is called with the number of items finished since the previous call, like
    rich's `Progress.advance`: after every item with media, after every batch without.
    Without media the URIs are null, media-level breaks are not planted, and the ground truth
    holds only the text-level columns.
    """
    plan = _plan(items, seed)
    root = Path(media_dir).expanduser().resolve()
    for folder in ("audio", "artwork", "video") if with_media else ():
        (root / folder).mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    breaks = _breaks(items, seed, with_media)
    copies = _duplicates(items, seed) if with_media else {}
    truth_uri = str(root / GROUND_TRUTH_FILE)
    tally = _Tally({}, {})
    batch_rows = MEDIA_BATCH_ROWS if with_media else DEFAULT_BATCH_ROWS
    workers = min(4, os.cpu_count() or 1)

    def batches(truth: pq.ParquetWriter, pool: ThreadPoolExecutor) -> Iterator[pa.RecordBatch]:
        for start in range(0, items, batch_rows):
            rows = np.arange(start, min(items, start + batch_rows), dtype=np.int64)
            batch, genre = _text_batch(plan, start, start + len(rows), breaks)
            code, number = plan.locate(rows)
            reasons = [_REASONS.get(breaks.get(r, "")) for r in rows.tolist()]
            media = None
            if with_media:
                jobs = _media_jobs(batch, rows, code, number, breaks, copies)
                media = []
                for item in pool.map(lambda job: _write_media(root, seed, job), jobs):
                    media.append(item)
                    if progress:
                        progress(1)
                batch = _with_uris(batch, media)
            elif progress:
                progress(len(rows))
            truth.write_batch(_truth_batch(batch, code, genre, reasons, media))
            tally.add(batch, reasons)
            yield batch

    with (
        pq.ParquetWriter(truth_uri, GROUND_TRUTH_SCHEMA) as truth,
        ThreadPoolExecutor(workers, thread_name_prefix="sample-media") as pool,
    ):
        reader = pa.RecordBatchReader.from_batches(CATALOG_SCHEMA, batches(truth, pool))
        write_deltalake(snapshot_uri, reader, mode="overwrite", storage_options=storage_options)
    return SampleCatalog(snapshot_uri, root, items, tally.counts, tally.broken, truth_uri)


def _media_jobs(
    batch: pa.RecordBatch,
    rows: np.ndarray,
    code: np.ndarray,
    number: np.ndarray,
    breaks: dict[int, str],
    copies: dict[int, _Copy],
) -> list[_MediaJob]:
    ids = batch.column("content_id").to_pylist()
    durations = batch.column("duration_ms").to_pylist()
    return [
        _MediaJob(ids[i], int(code[i]), int(number[i]), durations[i], breaks.get(r), copies.get(r))
        for i, r in enumerate(rows.tolist())
    ]
