"""The ``trello`` integration: create and move cards, list boards and lists."""

from apps.integrations.connectors.base import (
    AuthType,
    ConnectorSpec,
    DataType,
    Param,
    RetryPolicy,
    TaskSpec,
)

# Creating a card takes no idempotency key: a retry after a lost response may create it twice, so it retries sparingly.
# Reads and moving a card (setting its idList) are idempotent, so they are safe to repeat.
CREATE_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
IDEMPOTENT_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)

CONNECTOR = ConnectorSpec(
    name="Trello",
    short_name="trello",
    class_name="TrelloIntegration",
    auth_type=AuthType.API_KEY,
    description="Trello boards: create cards, move cards between lists, list boards and the lists on a board. "
    "Authenticates with an API key and a user token.",
    base_url_setting="NEENA_TRELLO_BASE_URL",
    tasks=(
        TaskSpec(
            task_name="Create Trello Card",
            python_method_name="create_card",
            description="Create or add a card to a Trello list, e.g. open a to-do card for a new request.",
            parameters=(
                Param("list_id", DataType.STRING, "The ID of the list to add the card to (Trello's idList)."),
                Param("name", DataType.STRING, "The card's title."),
                Param("desc", DataType.TEXT, "The card's description; Markdown is allowed.", optional=True, default=""),
                Param("due", DataType.DATETIME, "The card's due date and time (ISO 8601).", optional=True),
            ),
            outputs=(
                Param("card_id", DataType.STRING, "The ID of the created card."),
                Param("url", DataType.URL, "The card's web address."),
            ),
            side_effect=True,
            retry=CREATE_RETRY,
        ),
        TaskSpec(
            task_name="List Trello Boards",
            python_method_name="list_boards",
            description="List or fetch the Trello boards the connected user belongs to, with their IDs and names.",
            parameters=(
                Param(
                    "filter",
                    DataType.STRING,
                    "Which boards to return: 'open', 'closed', 'starred' or 'all'.",
                    optional=True,
                    default="open",
                ),
            ),
            outputs=(Param("boards", DataType.LIST, "The boards, each with id, name and url."),),
            output_is_list=True,
            retry=IDEMPOTENT_RETRY,
        ),
        TaskSpec(
            task_name="List Trello Lists",
            python_method_name="list_lists",
            description="List or fetch the lists (columns) on a Trello board, e.g. to find the list to add a card to.",
            parameters=(
                Param("board_id", DataType.STRING, "The ID of the board whose lists to return."),
                Param(
                    "filter",
                    DataType.STRING,
                    "Which lists to return: 'open', 'closed' or 'all'.",
                    optional=True,
                    default="open",
                ),
            ),
            outputs=(Param("lists", DataType.LIST, "The lists, each with id, name and pos."),),
            output_is_list=True,
            retry=IDEMPOTENT_RETRY,
        ),
        TaskSpec(
            task_name="Move Trello Card",
            python_method_name="move_card",
            description="Move a Trello card to another list, e.g. move it to 'Done' when the work is finished.",
            parameters=(
                Param("card_id", DataType.STRING, "The ID of the card to move."),
                Param("list_id", DataType.STRING, "The ID of the list to move the card to (Trello's idList)."),
            ),
            outputs=(
                Param("card_id", DataType.STRING, "The ID of the moved card."),
                Param("list_id", DataType.STRING, "The ID of the list the card is now in."),
            ),
            side_effect=True,
            retry=IDEMPOTENT_RETRY,
        ),
    ),
)
